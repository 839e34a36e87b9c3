//! A Server-Sent Events parser (the WHATWG "event stream interpretation"), fed with chunks
//! as they arrive.

/// Longest line or event accepted; a longer event is dropped (its `id` is still kept).
const MAX_EVENT_BYTES: usize = 64 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The last event id at dispatch (persists across events, as in `EventSource`).
    pub(crate) id: Option<String>,
    /// The `event` field (`message` when absent).
    pub(crate) event: String,
    /// The `data` lines joined with `\n`.
    pub(crate) data: String,
}

#[derive(Debug, Default)]
pub(crate) struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a leading `\n` in the next one belongs to it.
    skip_lf: bool,
    started: bool,
    data: String,
    has_data: bool,
    event: String,
    last_id: Option<String>,
    saw_id: bool,
    oversize: bool,
}

impl SseParser {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk; returns the events it completed.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let mut rest = chunk;
        if !self.started && !rest.is_empty() {
            self.started = true;
            rest = rest.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(rest);
        }
        if self.skip_lf {
            self.skip_lf = false;
            rest = rest.strip_prefix(b"\n").unwrap_or(rest);
        }
        while let Some(pos) = rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            let (head, tail) = rest.split_at(pos);
            self.append(head);
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, &mut out);
            let (&cr_or_lf, mut after) = match tail.split_first() {
                Some(x) => x,
                None => break,
            };
            if cr_or_lf == b'\r' {
                match after.first() {
                    Some(b'\n') => after = after.get(1..).unwrap_or(&[]),
                    None => self.skip_lf = true,
                    Some(_) => {}
                }
            }
            rest = after;
        }
        self.append(rest);
        out
    }

    fn append(&mut self, bytes: &[u8]) {
        if self.line.len() + bytes.len() > MAX_EVENT_BYTES {
            self.oversize = true;
            return;
        }
        self.line.extend_from_slice(bytes);
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.first() == Some(&b':') {
            return; // comment (keep-alive)
        }
        let (name, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => {
                let (n, v) = line.split_at(i);
                let v = v.get(1..).unwrap_or(&[]);
                (n, v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &[][..]),
        };
        let value = String::from_utf8_lossy(value);
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.has_data = true;
                if self.data.len() + value.len() > MAX_EVENT_BYTES {
                    self.oversize = true;
                } else {
                    self.data.push_str(&value);
                }
            }
            b"event" => self.event = value.into_owned(),
            b"id" if !value.contains('\0') => {
                self.saw_id = true;
                self.last_id = if value.is_empty() { None } else { Some(value.into_owned()) };
            }
            _ => {} // `retry` and unknown fields are ignored
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        let had_data = std::mem::replace(&mut self.has_data, false);
        let saw_id = std::mem::replace(&mut self.saw_id, false);
        let oversize = std::mem::replace(&mut self.oversize, false);
        if !had_data && !saw_id {
            return;
        }
        out.push(SseEvent {
            id: self.last_id.clone(),
            event: if event.is_empty() { "message".into() } else { event },
            // An oversize event is passed on without data, so that its id is still recorded.
            data: if oversize { String::new() } else { data },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        chunks.iter().flat_map(|c| p.push(c)).collect()
    }

    fn ev(id: Option<&str>, event: &str, data: &str) -> SseEvent {
        SseEvent { id: id.map(Into::into), event: event.into(), data: data.into() }
    }

    #[test]
    fn parses_events_comments_and_multiline_data() {
        let got = all(&[b": ping\n\nid: 1\nevent: set\ndata: a.b.c\n\nid:2\ndata:x\ndata: y\n\n"]);
        assert_eq!(got, vec![ev(Some("1"), "set", "a.b.c"), ev(Some("2"), "message", "x\ny")]);
    }

    #[test]
    fn events_split_across_chunks_and_line_endings() {
        let got = all(&[b"\xEF\xBB\xBFid: 7\r", b"\nevent: se", b"t\r\ndata: tok\r", b"\r", b"\n: ping\n\n"]);
        assert_eq!(got, vec![ev(Some("7"), "set", "tok")]);
        let got = all(&[b"id: 1\rdata: a\r\r"]);
        assert_eq!(got, vec![ev(Some("1"), "message", "a")]);
    }

    #[test]
    fn id_persists_and_id_only_blocks_are_reported() {
        let got = all(&[b"id: 3\n\ndata: z\n\n"]);
        assert_eq!(got, vec![ev(Some("3"), "message", ""), ev(Some("3"), "message", "z")]);
    }

    #[test]
    fn oversize_events_keep_their_id_but_lose_their_data() {
        let big = vec![b'a'; MAX_EVENT_BYTES + 10];
        let mut p = SseParser::new();
        let mut got = p.push(b"id: 9\ndata: ");
        got.extend(p.push(&big));
        got.extend(p.push(b"\n\nid: 10\ndata: ok\n\n"));
        assert_eq!(got, vec![ev(Some("9"), "message", ""), ev(Some("10"), "message", "ok")]);
    }
}
