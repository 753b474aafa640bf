// A metaclaude exporter in C: finished executions by outcome, in the exposition format the
// scrape negotiated (OpenMetrics or the Prometheus text format 0.0.4).
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

bool exports_exporter_render(exporter_exposition_format_t format, exporter_string_t *ret,
                             exporter_string_t *err) {
  // OpenMetrics names a counter family without `_total` and ends with `# EOF`.
  bool openmetrics = format == METACLAUDE_MONITOR_TYPES_EXPOSITION_FORMAT_OPENMETRICS;
  char text[320];
  snprintf(text, sizeof text,
           "# TYPE %s counter\n"
           "executions_finished_total{outcome=\"success\"} %llu\n"
           "executions_finished_total{outcome=\"failure\"} %llu\n%s",
           openmetrics ? "executions_finished" : "executions_finished_total", succeeded, failed,
           openmetrics ? "# EOF\n" : "");
  exporter_string_dup(ret, text);
  return true;
}
