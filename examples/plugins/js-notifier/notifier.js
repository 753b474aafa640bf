// A metaclaude notifier in JavaScript: POSTs each alert, as the host's alert JSON, to config.url.
import { post } from 'metaclaude:monitor/http@0.3.0';

let url = '';

const rfc3339 = (t) =>
  `${new Date(Number(t.seconds) * 1000).toISOString().slice(0, 19)}.${String(Math.floor(t.nanoseconds / 1000)).padStart(6, '0')}Z`;

const alertJson = (a) => ({
  timestamp: rfc3339(a.timestamp), type: a.type, severity: a.severity, message: a.message,
  value: a.value, threshold: a.threshold, specialist: a.specialist,
  labels: a.labels.length ? Object.fromEntries(a.labels) : undefined,
  status: a.status, fingerprint: a.fingerprint, starts_at: rfc3339(a.startsAt),
  ends_at: a.endsAt && rfc3339(a.endsAt),
  annotations: a.annotations.length ? Object.fromEntries(a.annotations) : undefined,
});

export function init(config) {
  url = JSON.parse(config).url;
  if (!/^https?:\/\//.test(url ?? '')) throw `config.url: expected the webhook's http(s):// URL, found ${JSON.stringify(url)}`;
}

export function notify(alerts) {
  for (const a of alerts) {
    let reply;
    try {
      reply = post(url, [['content-type', 'application/json']], new TextEncoder().encode(JSON.stringify(alertJson(a))));
    } catch (e) {
      throw `cannot POST to ${url}: ${e.payload ?? e}`;
    }
    if (reply.status >= 300) throw `${url} answered ${reply.status}: ${new TextDecoder().decode(reply.body.slice(0, 200))}`;
  }
}
