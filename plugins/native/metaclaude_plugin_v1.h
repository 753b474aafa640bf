/*
 * metaclaude native plugin ABI, version 1.
 *
 * A native plugin is a shared library (.so) that the host loads with dlopen and calls
 * directly. It is TRUSTED and UNSANDBOXED: it runs inside the host process with the
 * host's privileges, memory and time; a crash or a hang in it is a crash or a hang of
 * the host. The manifest must say `native = "libyour_plugin.so"` and `trusted = true`.
 * Prefer a WebAssembly component (see wit/monitor.wit) unless you need the last bit of
 * speed or a library that does not build for wasm32-wasip2.
 *
 * The kinds and the event model are those of the WIT package metaclaude:monitor@0.1.x.
 * Values cross the boundary as UTF-8 JSON text, in the host's own serialisation:
 *   - an event is one JSON object, exactly one line of `metaclaude run --events`;
 *   - alerts are a JSON array of objects with the seed's alert fields
 *     (timestamp, type, severity "warning"|"critical", message, value, threshold,
 *     optional specialist, optional labels object);
 *   - the config is the manifest's [config] table as a JSON object.
 *
 * Entry point: the library exports
 *
 *     const struct mc_plugin_v1 *metaclaude_plugin_v1(void);
 *
 * returning a pointer to a static table whose `abi_version` is 1. A later, incompatible
 * ABI gets a new symbol (metaclaude_plugin_v2), so an old host refuses a new plugin
 * with a clear message instead of calling it wrongly.
 *
 * Calls: `init` first, then any number of the others, then `drop` once. The host calls
 * one instance from one thread at a time (its worker thread), which may not be the thread
 * that called `init`. Every function returns 0 on success; any other value means the
 * call was refused, with the reason written to `err`. Strings are never NUL-terminated
 * and never outlive the call: copy what you keep.
 *
 * Entries a kind does not use may be NULL:
 *   sink:       handle_batch, flush
 *   exporter:   handle_batch, flush, render
 *   alert-rule: handle_batch, tick
 *   notifier:   notify
 */
#ifndef METACLAUDE_PLUGIN_V1_H
#define METACLAUDE_PLUGIN_V1_H

#include <stddef.h>
#include <stdint.h>

#define MC_PLUGIN_ABI_VERSION 1

/* A borrowed UTF-8 string: valid only during the call. */
struct mc_str {
    const uint8_t *ptr;
    size_t len;
};

/* Where the plugin writes text back (an error message, rendered metrics, alerts JSON).
 * `write` may be called several times; the pieces are concatenated. */
struct mc_out {
    void *ctx;
    void (*write)(void *ctx, const uint8_t *ptr, size_t len);
};

struct mc_plugin_v1 {
    uint32_t abi_version; /* MC_PLUGIN_ABI_VERSION */

    /* Checks `config` and creates the instance's state in *state. Refusing the config
     * (non-zero, with the reason in err) stops the plugin from loading. */
    int32_t (*init)(struct mc_str config, void **state, const struct mc_out *err);

    /* A batch of events, oldest first. Alert rules write the alerts they raise, as a JSON
     * array, to `alerts` (nothing, or "[]", for none); other kinds ignore it. */
    int32_t (*handle_batch)(void *state, const struct mc_str *events, size_t count,
                            const struct mc_out *alerts, const struct mc_out *err);

    /* Make everything durable (called before shutdown and on request). */
    int32_t (*flush)(void *state, const struct mc_out *err);

    /* Exporters: write the current state in the exporter's format to `out`. The host is not
     * told the format a scrape negotiated here (as with a WIT 0.1.0/0.2.0 exporter): text
     * ending with `# EOF` is taken as OpenMetrics (converted down for a 0.0.4 scrape), other
     * text as the format 0.0.4 (the whole answer is then 0.0.4). */
    int32_t (*render)(void *state, const struct mc_out *out, const struct mc_out *err);

    /* Alert rules: a clock tick (UTC seconds and nanoseconds since the Unix epoch). */
    int32_t (*tick)(void *state, int64_t seconds, uint32_t nanoseconds,
                    const struct mc_out *alerts, const struct mc_out *err);

    /* Notifiers: deliver the alerts (a JSON array). */
    int32_t (*notify)(void *state, struct mc_str alerts, const struct mc_out *err);

    /* Frees the state. Called once; the state is not used afterwards. */
    void (*drop)(void *state);
};

const struct mc_plugin_v1 *metaclaude_plugin_v1(void);

#endif
