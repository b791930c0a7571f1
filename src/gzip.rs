//! Parallel gzip whose bytes do not depend on the thread count: fixed chunks, deflated independently, one gzip member.
//!
//! The input is cut into `CHUNK` bytes, each chunk is deflated on its own
//! (pinned pure-Rust miniz_oxide through flate2) and ends with a sync flush,
//! so the chunks concatenate into one valid deflate stream; only the last one
//! is finished. Chunk boundaries depend only on the input, never on how many
//! threads ran or in which order they finished, so the output — and every
//! layer digest — is the same on any machine. This is pigz's construction
//! without its dictionary priming, which costs well under 1% of size at this
//! chunk size and keeps chunks independent.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use flate2::Compression;
use flate2::write::DeflateEncoder;

/// Bytes per independently compressed chunk: large enough that restarting
/// the LZ77 window costs little, small enough to keep every core busy on a
/// modest layer and memory bounded (in flight: about 2 × threads chunks).
pub const CHUNK: usize = 1 << 20;

/// The gzip header: no name, no mtime, OS "unknown", so it is the same everywhere.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

struct Job {
    sequence: u64,
    data: Vec<u8>,
    last: bool,
    level: u32,
    reply: Sender<(u64, io::Result<Vec<u8>>)>,
}

/// Most chunks in flight across the whole pool (each holds about two chunk
/// buffers: input and output), whatever the thread count, so memory stays
/// bounded on a machine with many cores.
const MAX_IN_FLIGHT: usize = 40;

/// A fixed set of compression threads shared by every layer of a build.
pub struct CompressPool {
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    threads: usize,
    /// Chunks that may still be submitted: taken on submit, returned when the
    /// compressed chunk has been written out, shared by all writers.
    permits: Mutex<usize>,
    returned: Condvar,
}

impl CompressPool {
    /// Starts `threads` workers (at least one).
    pub fn new(threads: usize) -> CompressPool {
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let workers = (0..threads)
            .map(|_| {
                let queue = Arc::clone(&queue);
                std::thread::spawn(move || {
                    loop {
                        // Take one job and release the queue before the slow part.
                        let next = match queue.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = next else { return };
                        let result = deflate_chunk(&job.data, job.last, job.level);
                        // A writer that gave up no longer listens; nothing to do then.
                        let _ = job.reply.send((job.sequence, result));
                    }
                })
            })
            .collect();
        CompressPool {
            jobs: Some(jobs),
            workers,
            threads,
            permits: Mutex::new((2 * threads + 2).min(MAX_IN_FLIGHT)),
            returned: Condvar::new(),
        }
    }

    fn try_acquire(&self) -> bool {
        let mut free = self.permits.lock().unwrap_or_else(|p| p.into_inner());
        if *free == 0 {
            return false;
        }
        *free -= 1;
        true
    }

    /// Waits briefly for another writer to return a permit.
    fn wait_for_permit(&self) {
        let free = self.permits.lock().unwrap_or_else(|p| p.into_inner());
        if *free == 0 {
            // Timed, so a writer also gets back to draining its own finished chunks.
            let _ = self.returned.wait_timeout(free, Duration::from_millis(5));
        }
    }

    fn release(&self) {
        let mut free = self.permits.lock().unwrap_or_else(|p| p.into_inner());
        *free += 1;
        self.returned.notify_one();
    }

    /// As many workers as this machine has cores.
    pub fn for_this_machine() -> CompressPool {
        // One more thread than cores: the walking and hashing threads wait on
        // I/O now and then, and an extra compressor keeps the cores busy.
        CompressPool::new(
            std::thread::available_parallelism()
                .map(|n| n.get() + 1)
                .unwrap_or(2),
        )
    }

    /// How many workers run.
    pub fn threads(&self) -> usize {
        self.threads
    }

    fn submit(&self, job: Job) -> io::Result<()> {
        self.jobs
            .as_ref()
            .ok_or_else(|| io::Error::other("compression pool is shut down"))?
            .send(job)
            .map_err(|_| io::Error::other("compression threads stopped"))
    }
}

impl Drop for CompressPool {
    fn drop(&mut self) {
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// Bytes per sample when judging whether a chunk can shrink at all.
const SAMPLE: usize = 8 * 1024;

/// Whether deflate would gain nothing on `data`: four samples spread over it
/// all fail to shrink by 2% at the fastest level. Random and already
/// compressed bytes (wheels, images, archives) then go out as stored blocks,
/// which deflate would fall back to anyway after a full, slow match search.
/// The verdict depends only on the chunk's bytes, so output stays deterministic.
fn looks_incompressible(data: &[u8]) -> bool {
    if data.len() < 4 * SAMPLE {
        return false;
    }
    (0..4).all(|i| {
        let start = i * (data.len() - SAMPLE) / 3;
        let sample = &data[start..start + SAMPLE];
        let mut probe = DeflateEncoder::new(Vec::with_capacity(SAMPLE + 64), Compression::fast());
        probe.write_all(sample).is_ok()
            && probe
                .finish()
                .map(|out| out.len() * 100 >= sample.len() * 98)
                .unwrap_or(false)
    })
}

fn deflate_chunk(data: &[u8], last: bool, level: u32) -> io::Result<Vec<u8>> {
    let level = if level > 0 && looks_incompressible(data) {
        0
    } else {
        level
    };
    let mut encoder = DeflateEncoder::new(
        Vec::with_capacity(data.len() / 2 + 64),
        Compression::new(level),
    );
    encoder.write_all(data)?;
    if last {
        return encoder.finish();
    }
    encoder.flush()?;
    // Take the flushed bytes; the unfinished tail the encoder writes when
    // dropped lands in the emptied vector and is discarded, as it must be.
    Ok(std::mem::take(encoder.get_mut()))
}

/// The pool permits one writer holds; returned to the pool when dropped, so a
/// writer abandoned by an error never starves the others.
struct HeldPermits<'p> {
    pool: &'p CompressPool,
    held: u64,
}

impl HeldPermits<'_> {
    fn take(&mut self) -> bool {
        let taken = self.pool.try_acquire();
        self.held += u64::from(taken);
        taken
    }

    fn give_back(&mut self) {
        if self.held > 0 {
            self.held -= 1;
            self.pool.release();
        }
    }
}

impl Drop for HeldPermits<'_> {
    fn drop(&mut self) {
        while self.held > 0 {
            self.give_back();
        }
    }
}

/// A gzip writer that compresses on a `CompressPool` and writes in order to `out`.
pub struct GzipWriter<'p, W: Write> {
    pool: &'p CompressPool,
    out: W,
    level: u32,
    buffer: Vec<u8>,
    crc: crc32fast::Hasher,
    length: u64,
    submitted: u64,
    written: u64,
    done: BTreeMap<u64, Vec<u8>>,
    replies: Receiver<(u64, io::Result<Vec<u8>>)>,
    reply_to: Sender<(u64, io::Result<Vec<u8>>)>,
    header_written: bool,
    permits: HeldPermits<'p>,
}

impl<'p, W: Write> GzipWriter<'p, W> {
    /// A writer compressing at `level` (0–9).
    pub fn new(out: W, pool: &'p CompressPool, level: u32) -> Self {
        let (reply_to, replies) = mpsc::channel();
        GzipWriter {
            pool,
            out,
            level,
            buffer: Vec::with_capacity(CHUNK),
            crc: crc32fast::Hasher::new(),
            length: 0,
            submitted: 0,
            written: 0,
            done: BTreeMap::new(),
            replies,
            reply_to,
            header_written: false,
            permits: HeldPermits { pool, held: 0 },
        }
    }

    fn in_flight(&self) -> u64 {
        self.submitted - self.written
    }

    fn submit(&mut self, last: bool) -> io::Result<()> {
        // Take a slot in the pool's budget, writing out finished chunks while waiting.
        loop {
            self.drain_ready()?;
            if self.permits.take() {
                break;
            }
            if self.in_flight() > 0 {
                self.receive_one()?;
            } else {
                self.pool.wait_for_permit();
            }
        }
        let data = std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(if last { 0 } else { CHUNK }),
        );
        self.crc.update(&data);
        self.length += data.len() as u64;
        self.pool.submit(Job {
            sequence: self.submitted,
            data,
            last,
            level: self.level,
            reply: self.reply_to.clone(),
        })?;
        self.submitted += 1;
        Ok(())
    }

    /// Takes every finished chunk without waiting, writing out those now in order.
    fn drain_ready(&mut self) -> io::Result<()> {
        loop {
            match self.replies.try_recv() {
                Ok((sequence, result)) => self.accept(sequence, result?)?,
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => {
                    return Err(io::Error::other("compression threads stopped"));
                }
            }
        }
    }

    /// Waits for one of this writer's chunks to finish.
    fn receive_one(&mut self) -> io::Result<()> {
        let (sequence, result) = self
            .replies
            .recv()
            .map_err(|_| io::Error::other("compression threads stopped"))?;
        self.accept(sequence, result?)
    }

    fn accept(&mut self, sequence: u64, bytes: Vec<u8>) -> io::Result<()> {
        self.done.insert(sequence, bytes);
        if !self.header_written {
            self.out.write_all(&HEADER)?;
            self.header_written = true;
        }
        while let Some(bytes) = self.done.remove(&self.written) {
            self.out.write_all(&bytes)?;
            self.written += 1;
            self.permits.give_back();
        }
        Ok(())
    }

    /// Compresses what is left, writes the trailer, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while self.in_flight() > 0 {
            self.receive_one()?;
        }
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        // ISIZE is the length modulo 2^32, as RFC 1952 defines it.
        self.out.write_all(&(self.length as u32).to_le_bytes())?;
        Ok(self.out)
    }
}

impl<W: Write> Write for GzipWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buffer.len();
        let taken = room.min(buf.len());
        self.buffer.extend_from_slice(&buf[..taken]);
        if self.buffer.len() == CHUNK {
            self.submit(false)?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Chunk boundaries must not depend on when callers flush, so nothing is forced out here.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        // Half text, half noise from a fixed LCG, so both kinds of block occur.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        (0..len)
            .map(|i| {
                if (i / 100_000) % 2 == 0 {
                    b"stowage layer text "[i % 19]
                } else {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    (state >> 33) as u8
                }
            })
            .collect()
    }

    fn gzip_with(threads: usize, data: &[u8], write_size: usize) -> Vec<u8> {
        let pool = CompressPool::new(threads);
        let mut writer = GzipWriter::new(Vec::new(), &pool, 6);
        for piece in data.chunks(write_size.max(1)) {
            writer.write_all(piece).unwrap();
        }
        writer.finish().unwrap()
    }

    #[test]
    fn same_bytes_for_any_thread_count_and_write_pattern() {
        let data = sample(3 * CHUNK + 12_345);
        let one = gzip_with(1, &data, 7_777);
        for (threads, write_size) in [(2, 512), (8, 1 << 20), (3, 1)] {
            if write_size == 1 && data.len() > 100_000 {
                // Byte-at-a-time over megabytes is slow in debug builds; a prefix proves the point.
                let prefix = &data[..CHUNK + 10];
                assert_eq!(gzip_with(1, prefix, 4096), gzip_with(threads, prefix, 1));
                continue;
            }
            assert_eq!(
                one,
                gzip_with(threads, &data, write_size),
                "{threads} threads"
            );
        }
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&one[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, data, "a standard gzip reader gets the input back");
    }

    #[test]
    fn random_chunks_are_stored_text_chunks_compressed() {
        let mut state = 7u64;
        let noise: Vec<u8> = (0..CHUNK)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                (state >> 33) as u8
            })
            .collect();
        assert!(looks_incompressible(&noise));
        let stored = deflate_chunk(&noise, true, 6).unwrap();
        assert!(stored.len() > noise.len() && stored.len() < noise.len() + noise.len() / 100);
        let text: Vec<u8> = b"an ordinary line of python source\n".repeat(CHUNK / 34);
        assert!(!looks_incompressible(&text));
        assert!(deflate_chunk(&text, true, 6).unwrap().len() < text.len() / 10);
    }

    #[test]
    fn empty_and_exact_chunk_inputs_round_trip() {
        for len in [0, 1, CHUNK, 2 * CHUNK] {
            let data = sample(len);
            let gz = gzip_with(2, &data, 65_536);
            let mut decoded = Vec::new();
            flate2::read::MultiGzDecoder::new(&gz[..])
                .read_to_end(&mut decoded)
                .unwrap();
            assert_eq!(decoded.len(), len);
            assert_eq!(decoded, data);
        }
    }
}
