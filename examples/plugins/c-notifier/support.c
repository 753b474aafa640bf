// See support.h.
#include "support.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// ---- reading the config (JSON text, as the host hands it to init) ----

typedef struct {
  const char *p, *end;
} scan_t;

static void skip_space(scan_t *s) {
  while (s->p < s->end && strchr(" \t\r\n", *s->p) && *s->p) s->p++;
}

// Decodes the JSON string at s->p into `out` (NULL: skip it). False when malformed.
static bool read_string(scan_t *s, char **out) {
  if (s->p >= s->end || *s->p != '"') return false;
  char *text = out ? malloc((size_t)(s->end - s->p)) : NULL;
  size_t n = 0;
  if (out && !text) return false;
  for (s->p++; s->p < s->end && *s->p != '"'; s->p++) {
    char c = *s->p;
    if (c == '\\') {
      if (++s->p >= s->end) break;
      const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t", *at = strchr(from, *s->p);
      if (*s->p == 'u' && s->end - s->p > 4) {
        unsigned code = (unsigned)strtoul((char[5]){s->p[1], s->p[2], s->p[3], s->p[4], 0}, NULL, 16);
        s->p += 4;  // code points past U+007F are kept as UTF-8 below, surrogates as '?'
        if (code < 0x80) c = (char)code;
        else if (code < 0x800) { if (text) text[n++] = (char)(0xC0 | code >> 6); c = (char)(0x80 | (code & 0x3F)); }
        else if (code >= 0xD800 && code < 0xE000) c = '?';
        else { if (text) { text[n++] = (char)(0xE0 | code >> 12); text[n++] = (char)(0x80 | (code >> 6 & 0x3F)); } c = (char)(0x80 | (code & 0x3F)); }
      } else if (at && *s->p) c = to[at - from];
      else break;
    }
    if (text) text[n++] = c;
  }
  bool closed = s->p < s->end && *s->p == '"';
  s->p++;
  if (text && closed) { text[n] = 0; *out = text; }
  else free(text);
  return closed;
}

// Skips one JSON value of any kind. False when malformed.
static bool skip_value(scan_t *s) {
  skip_space(s);
  if (s->p >= s->end) return false;
  if (*s->p == '"') return read_string(s, NULL);
  if (*s->p == '{' || *s->p == '[') {
    char close = *s->p == '{' ? '}' : ']';
    s->p++;
    skip_space(s);
    if (s->p < s->end && *s->p == close) { s->p++; return true; }
    for (;;) {
      if (close == '}') {
        skip_space(s);
        if (!read_string(s, NULL)) return false;
        skip_space(s);
        if (s->p >= s->end || *s->p++ != ':') return false;
      }
      if (!skip_value(s)) return false;
      skip_space(s);
      if (s->p < s->end && *s->p == ',') { s->p++; continue; }
      return s->p < s->end && *s->p++ == close;
    }
  }
  const char *start = s->p;  // a number, true, false or null
  while (s->p < s->end && strchr("+-.0123456789eEtrufalsn", *s->p) && *s->p) s->p++;
  return s->p > start;
}

char *config_string(const notifier_string_t *config, const char *key) {
  scan_t s = {(const char *)config->ptr, (const char *)config->ptr + config->len};
  skip_space(&s);
  if (s.p >= s.end || *s.p++ != '{') return NULL;
  char *found = NULL;
  for (bool first = true;; first = false) {
    skip_space(&s);
    if (first && s.p < s.end && *s.p == '}') return NULL;
    char *name = NULL;
    if (!read_string(&s, &name)) return found;
    skip_space(&s);
    bool wanted = strcmp(name, key) == 0 && !found;
    free(name);
    if (s.p >= s.end || *s.p++ != ':') return found;
    skip_space(&s);
    if (wanted && s.p < s.end && *s.p == '"') {
      if (!read_string(&s, &found)) return NULL;
    } else if (!skip_value(&s)) {
      return found;
    }
    skip_space(&s);
    if (s.p >= s.end || *s.p++ != ',') return found;
  }
}

// ---- writing the alert JSON ----

typedef struct {
  char *p;
  size_t len, cap;
  bool failed;
} buf_t;

static void put(buf_t *b, const char *s, size_t n) {
  if (b->failed) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = (b->len + n + 1) * 2;
    char *p = realloc(b->p, cap);
    if (!p) { b->failed = true; return; }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void put_text(buf_t *b, const char *s) { put(b, s, strlen(s)); }

static void put_string(buf_t *b, const notifier_string_t *s) {
  put(b, "\"", 1);
  size_t run = 0;  // bytes that go out as they are
  for (size_t i = 0; i < s->len; i++) {
    unsigned char c = s->ptr[i];
    if (c >= 0x20 && c != '"' && c != '\\') { run++; continue; }
    put(b, (const char *)s->ptr + i - run, run);
    run = 0;
    char escaped[8];
    snprintf(escaped, sizeof escaped, c == '"' || c == '\\' ? "\\%c" : "\\u%04x", c);
    put_text(b, escaped);
  }
  put(b, (const char *)s->ptr + s->len - run, run);
  put(b, "\"", 1);
}

static void put_key(buf_t *b, const char *key) {
  put_text(b, b->len > 1 ? ",\"" : "\"");
  put_text(b, key);
  put_text(b, "\":");
}

// The shortest of %.15g, %.16g, %.17g that reads back as the same number; null for
// what JSON cannot hold (NaN, infinities).
static void put_number(buf_t *b, double value) {
  char text[32];
  if (value != value || value - value != 0) { put_text(b, "null"); return; }
  for (int digits = 15; digits <= 17; digits++) {
    snprintf(text, sizeof text, "%.*g", digits, value);
    if (strtod(text, NULL) == value) break;
  }
  put_text(b, text);
}

static void put_time(buf_t *b, const metaclaude_monitor_types_datetime_t *t) {
  time_t seconds = (time_t)t->seconds;
  struct tm at;
  char text[48];
  gmtime_r(&seconds, &at);
  size_t n = strftime(text, sizeof text, "\"%Y-%m-%dT%H:%M:%S", &at);
  snprintf(text + n, sizeof text - n, ".%06uZ\"", (unsigned)(t->nanoseconds / 1000));
  put_text(b, text);
}

static void put_pairs(buf_t *b, const char *key, const notifier_list_tuple2_string_string_t *pairs) {
  if (pairs->len == 0) return;
  put_key(b, key);
  for (size_t i = 0; i < pairs->len; i++) {
    put_text(b, i ? "," : "{");
    put_string(b, &pairs->ptr[i].f0);
    put_text(b, ":");
    put_string(b, &pairs->ptr[i].f1);
  }
  put_text(b, "}");
}

char *alert_json(const notifier_alert_t *a) {
  buf_t b = {0};
  put_text(&b, "{");
  put_key(&b, "timestamp"), put_time(&b, &a->timestamp);
  put_key(&b, "type"), put_string(&b, &a->type);
  put_key(&b, "severity");
  put_text(&b, a->severity == METACLAUDE_MONITOR_TYPES_SEVERITY_CRITICAL ? "\"critical\"" : "\"warning\"");
  put_key(&b, "message"), put_string(&b, &a->message);
  put_key(&b, "value"), put_number(&b, a->value);
  put_key(&b, "threshold"), put_number(&b, a->threshold);
  if (a->specialist.is_some) put_key(&b, "specialist"), put_string(&b, &a->specialist.val);
  put_pairs(&b, "labels", &a->labels);
  put_key(&b, "status");
  put_text(&b, a->status == METACLAUDE_MONITOR_TYPES_ALERT_STATUS_RESOLVED ? "\"resolved\"" : "\"firing\"");
  put_key(&b, "fingerprint"), put_string(&b, &a->fingerprint);
  put_key(&b, "starts_at"), put_time(&b, &a->starts_at);
  if (a->ends_at.is_some) put_key(&b, "ends_at"), put_time(&b, &a->ends_at.val);
  put_pairs(&b, "annotations", &a->annotations);
  put_text(&b, "}");
  if (b.failed) { free(b.p); return NULL; }
  return b.p;
}

// ---- errors for the host ----

bool fail(notifier_string_t *err, const char *format, ...) {
  va_list args;
  va_start(args, format);
  char *text = NULL;
  int n = vasprintf(&text, format, args);
  va_end(args);
  if (n < 0) notifier_string_dup(err, "out of memory");
  else { err->ptr = (uint8_t *)text; err->len = (size_t)n; }
  return false;
}
