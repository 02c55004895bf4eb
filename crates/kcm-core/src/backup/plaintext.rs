//! The archive's plaintext (the snapshot as JSON) while it is in memory: made whole
//! before sealing, because its length goes into the header that every chunk
//! authenticates, and checked whole before any of it is restored.

use std::io::{Read, Write};

use zeroize::Zeroizing;

/// Bytes held in segments that are allocated at their full size and never grow, so
/// no reallocation leaves a copy of the plaintext behind in freed memory; every
/// segment is zeroized on drop.
pub(super) struct Plaintext {
    segment_len: usize,
    segments: Vec<Zeroizing<Vec<u8>>>,
}

impl Plaintext {
    /// An empty buffer that grows `segment_len` bytes at a time.
    pub(super) fn new(segment_len: usize) -> Self {
        Self {
            segment_len: segment_len.max(1),
            segments: Vec::new(),
        }
    }

    /// Bytes held.
    pub(super) fn len(&self) -> u64 {
        self.segments.iter().map(|s| s.len() as u64).sum()
    }

    /// Reads the bytes back in order, as one stream.
    pub(super) fn reader(&self) -> impl Read + '_ {
        PlaintextReader {
            segments: &self.segments,
            index: 0,
            offset: 0,
        }
    }
}

impl Write for Plaintext {
    fn write(&mut self, mut buf: &[u8]) -> std::io::Result<usize> {
        let written = buf.len();
        while !buf.is_empty() {
            match self.segments.last_mut() {
                Some(last) if last.len() < self.segment_len => {
                    let n = (self.segment_len - last.len()).min(buf.len());
                    last.extend_from_slice(&buf[..n]);
                    buf = &buf[n..];
                }
                _ => self
                    .segments
                    .push(Zeroizing::new(Vec::with_capacity(self.segment_len))),
            }
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct PlaintextReader<'a> {
    segments: &'a [Zeroizing<Vec<u8>>],
    index: usize,
    offset: usize,
}

impl Read for PlaintextReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(segment) = self.segments.get(self.index) {
            if self.offset < segment.len() {
                let n = (segment.len() - self.offset).min(buf.len());
                buf[..n].copy_from_slice(&segment[self.offset..self.offset + n]);
                self.offset += n;
                return Ok(n);
            }
            self.index += 1;
            self.offset = 0;
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_was_written_across_segments() {
        for segment_len in [1, 3, 7, 64] {
            let mut plaintext = Plaintext::new(segment_len);
            let data: Vec<u8> = (0..50u8).collect();
            for piece in data.chunks(6) {
                plaintext.write_all(piece).unwrap();
            }
            assert_eq!(plaintext.len(), 50);
            assert!(plaintext
                .segments
                .iter()
                .all(|s| s.len() <= segment_len && s.capacity() == segment_len));
            let mut back = Vec::new();
            plaintext.reader().read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "segment {segment_len}");
        }
        let mut empty = Vec::new();
        Plaintext::new(0).reader().read_to_end(&mut empty).unwrap();
        assert!(empty.is_empty());
    }
}
