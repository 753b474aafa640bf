// What a C notifier needs beside its own logic: its config's string fields, an alert
// as the host's alert JSON, and error messages for the host. Not generated: plain C
// over the types `wit-bindgen c` generates into build/notifier.h.
#ifndef SUPPORT_H
#define SUPPORT_H

#include <stdbool.h>

#include "notifier.h"

// The string `key` of the config object (JSON), as a NUL-terminated malloc'd copy;
// NULL when it is absent, not a string, or the config is not a JSON object.
char *config_string(const notifier_string_t *config, const char *key);

// The alert as the host writes it to its alert history, absent fields left out
// (malloc'd, NUL-terminated; NULL when out of memory).
char *alert_json(const notifier_alert_t *alert);

// Sets `err` to the printf-style message and returns false, for `return fail(err, ...)`.
bool fail(notifier_string_t *err, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

#endif
