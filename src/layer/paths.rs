//! The path bytes of a plan's entries (and its symlink targets), kept in a few large chunks instead of one allocation each.
//!
//! A plan holds one entry per file for the whole build. A path on the heap
//! of its own costs its pointer and length (16 bytes) and the allocator's
//! rounding and header (about 20 more); in an arena it costs a 12-byte
//! [`Span`] and its bytes. Each walking thread fills its own arena; the plan
//! takes their chunks as they are (no copy), and the plans a split makes
//! share them.

/// Where one path's bytes sit in a [`PathArena`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Span {
    chunk: u32,
    offset: u32,
    len: u32,
}

impl Span {
    /// A number unique to this span among those of one arena's non-empty
    /// pushes: where its bytes start. A split's plans share the arena, so an
    /// entry keeps its key in whichever layer it lands.
    pub(super) fn key(self) -> u64 {
        (u64::from(self.chunk) << 32) | u64::from(self.offset)
    }

    /// The same bytes once the arena they were pushed to has been appended after `chunks` others.
    pub(super) fn moved(self, chunks: u32) -> Span {
        Span {
            chunk: self.chunk + chunks,
            ..self
        }
    }
}

/// Path bytes in chunks of at most 4 GiB each (offsets are 32 bits).
#[derive(Debug, Default)]
pub(super) struct PathArena {
    chunks: Vec<Vec<u8>>,
}

impl PathArena {
    /// Copies `bytes` in; None when they alone are longer than a chunk can be (4 GiB).
    pub(super) fn push(&mut self, bytes: &[u8]) -> Option<Span> {
        let len = u32::try_from(bytes.len()).ok()?;
        let fits = |chunk: &Vec<u8>| u32::try_from(chunk.len() + bytes.len()).is_ok();
        if !self.chunks.last().is_some_and(fits) {
            self.chunks.push(Vec::new());
        }
        let chunk = u32::try_from(self.chunks.len() - 1).ok()?;
        let last = self.chunks.last_mut()?;
        let offset = u32::try_from(last.len()).ok()?;
        last.extend_from_slice(bytes);
        Some(Span { chunk, offset, len })
    }

    /// The bytes at `span`; empty for a span of another arena (a bug, never a user's input).
    pub(super) fn get(&self, span: Span) -> &[u8] {
        let start = span.offset as usize;
        self.chunks
            .get(span.chunk as usize)
            .and_then(|chunk| chunk.get(start..start + span.len as usize))
            .unwrap_or_default()
    }

    /// Takes `other`'s chunks after its own; returns the count to move `other`'s spans by.
    pub(super) fn absorb(&mut self, other: PathArena) -> u32 {
        let before = u32::try_from(self.chunks.len()).unwrap_or(u32::MAX);
        self.chunks.extend(other.chunks);
        before
    }

    /// Gives back what the chunks reserved for growth and never used.
    pub(super) fn shrink(&mut self) {
        for chunk in &mut self.chunks {
            chunk.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_back_their_bytes_after_arenas_are_joined() {
        let mut first = PathArena::default();
        let a = first.push(b"opt/app").unwrap_or_default();
        let empty = first.push(b"").unwrap_or_default();
        let mut second = PathArena::default();
        let b = second.push(b"opt/app/lib").unwrap_or_default();
        let moved = first.absorb(second);
        assert_eq!(moved, 1);
        first.shrink();
        assert_eq!(first.get(a), b"opt/app");
        assert_eq!(first.get(empty), b"");
        assert_eq!(first.get(b.moved(moved)), b"opt/app/lib");
        assert_eq!(
            first.get(b.moved(5)),
            b"",
            "a span past the chunks reads as empty"
        );
    }
}
