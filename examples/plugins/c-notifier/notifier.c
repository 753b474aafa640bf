// A metaclaude notifier in C: POSTs each alert, as the host's alert JSON, to config.url.
#include <stdlib.h>
#include <string.h>

#include "support.h"

static notifier_string_t url;

bool exports_notifier_init(notifier_string_t *config, notifier_string_t *err) {
  char *text = config_string(config, "url");
  notifier_string_free(config);
  if (!text || (strncmp(text, "http://", 7) && strncmp(text, "https://", 8)))
    return free(text), fail(err, "config.url: expected the webhook's http(s):// URL");
  notifier_string_free(&url);
  url = (notifier_string_t){(uint8_t *)text, strlen(text)};
  return true;
}

bool exports_notifier_notify(notifier_list_alert_t *alerts, notifier_string_t *err) {
  notifier_tuple2_string_string_t type = {{(uint8_t *)"content-type", 12}, {(uint8_t *)"application/json", 16}};
  notifier_list_tuple2_string_string_t headers = {&type, 1};
  bool ok = true;
  for (size_t i = 0; ok && i < alerts->len; i++) {
    char *json = alert_json(&alerts->ptr[i]);
    notifier_list_u8_t body = {(uint8_t *)json, json ? strlen(json) : 0};
    metaclaude_monitor_http_response_t reply;
    notifier_string_t why;
    if (!json) {
      ok = fail(err, "out of memory");
    } else if (!metaclaude_monitor_http_post(&url, &headers, &body, &reply, &why)) {
      ok = fail(err, "cannot POST to %s: %.*s", url.ptr, (int)why.len, why.ptr);
      notifier_string_free(&why);
    } else {
      if (reply.status >= 300)
        ok = fail(err, "%s answered %u: %.*s", url.ptr, reply.status, (int)(reply.body.len < 200 ? reply.body.len : 200), reply.body.ptr);
      metaclaude_monitor_http_response_free(&reply);
    }
    free(json);
  }
  notifier_list_alert_free(alerts);
  return ok;
}
