// A real SMTP server (npm smtp-server) on a loopback port that captures every message,
// decoded with mailparser (quoted-printable and base64 bodies break naive URL matching).

import { SMTPServer } from 'smtp-server';
import { simpleParser } from 'mailparser';

/**
 * Starts a capturing SMTP server on 127.0.0.1:0 (no TLS, no authentication).
 * Resolves to { port, url, messages, waitFor(pred, timeout), close() }, where each message is
 * { to, from, subject, text, html, raw }.
 */
export async function startSmtp() {
  const messages = [];
  const waiters = [];
  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS', 'AUTH'],
    authOptional: true,
    logger: false,
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', (c) => chunks.push(c));
      stream.on('end', async () => {
        try {
          const raw = Buffer.concat(chunks);
          const parsed = await simpleParser(raw);
          const m = {
            to: parsed.to?.value?.map((a) => a.address) ?? [],
            from: parsed.from?.text ?? '',
            subject: parsed.subject ?? '',
            text: parsed.text ?? '',
            html: typeof parsed.html === 'string' ? parsed.html : '',
            raw: raw.toString('utf8'),
          };
          messages.push(m);
          for (const w of [...waiters]) {
            if (w.pred(m)) {
              waiters.splice(waiters.indexOf(w), 1);
              w.resolve(m);
            }
          }
          callback();
        } catch (e) {
          callback(e);
        }
      });
    },
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = server.server.address().port;
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    messages,
    /** The first message matching `pred` (already received or arriving within `timeout`). */
    waitFor(pred = () => true, timeout = 15_000) {
      const found = messages.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve };
        waiters.push(w);
        setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) {
            waiters.splice(i, 1);
            reject(new Error(`no matching mail within ${timeout} ms (got ${messages.length})`));
          }
        }, timeout).unref();
      });
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The first URL in `text` that starts with `prefix`. */
export function linkIn(text, prefix) {
  const at = text.indexOf(prefix);
  if (at < 0) return undefined;
  const m = /^[^\s<>"]+/.exec(text.slice(at));
  return m ? m[0] : undefined;
}
