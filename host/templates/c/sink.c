// A metaclaude sink in C: logs each finished execution through the host.
#include <stdio.h>

#include "sink.h"

bool exports_sink_init(sink_string_t *config, sink_string_t *err) {
  sink_string_free(config);
  return true;
}

bool exports_sink_handle_batch(sink_list_event_t *events, sink_string_t *err) {
  for (size_t i = 0; i < events->len; i++) {
    const sink_event_t *e = &events->ptr[i];
    if (e->kind != METACLAUDE_MONITOR_TYPES_LIFECYCLE_KIND_FINISHED || !e->result.is_some) continue;
    if (!metaclaude_monitor_host_log_enabled(METACLAUDE_MONITOR_HOST_LEVEL_INFO)) continue;
    const metaclaude_monitor_types_execution_result_t *r = &e->result.val;
    char line[512];
    snprintf(line, sizeof line, "%.*s %.*s %s in %.2fs", (int)r->execution_id.len, r->execution_id.ptr,
             (int)r->script_id.len, r->script_id.ptr, r->success ? "succeeded" : "failed",
             r->resource_usage.wall_time_seconds);
    sink_string_t message;
    sink_string_set(&message, line);
    metaclaude_monitor_host_log(METACLAUDE_MONITOR_HOST_LEVEL_INFO, &message);
  }
  sink_list_event_free(events);
  return true;
}

bool exports_sink_flush(sink_string_t *err) { return true; }
