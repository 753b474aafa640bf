// A metaclaude exporter in C: finished executions by outcome, in the Prometheus text format.
#include <stdio.h>

#include "exporter.h"

static unsigned long long succeeded, failed;

bool exports_exporter_init(exporter_string_t *config, exporter_string_t *err) {
  exporter_string_free(config);
  return true;
}

bool exports_exporter_handle_batch(exporter_list_event_t *events, exporter_string_t *err) {
  for (size_t i = 0; i < events->len; i++) {
    const exporter_event_t *e = &events->ptr[i];
    if (e->kind == METACLAUDE_MONITOR_TYPES_LIFECYCLE_KIND_FINISHED && e->result.is_some)
      *(e->result.val.success ? &succeeded : &failed) += 1;
  }
  exporter_list_event_free(events);
  return true;
}

bool exports_exporter_flush(exporter_string_t *err) { return true; }

bool exports_exporter_render(exporter_string_t *ret, exporter_string_t *err) {
  char text[256];
  snprintf(text, sizeof text,
           "# TYPE executions_finished_total counter\n"
           "executions_finished_total{outcome=\"success\"} %llu\n"
           "executions_finished_total{outcome=\"failure\"} %llu\n",
           succeeded, failed);
  exporter_string_dup(ret, text);
  return true;
}
