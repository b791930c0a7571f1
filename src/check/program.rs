//! What the head of an executable says it needs: a `#!` line's interpreter, or an ELF's program interpreter.
//!
//! Pure functions of bytes. Only as much ELF as `execve` reads is parsed:
//! the header and the program headers, for `PT_INTERP`; 32 and 64 bit,
//! either byte order.

/// How many bytes of an executable the check reads first: a `#!` line is at
/// most [`BINPRM_BUF_SIZE`] bytes on Linux, and an ELF's program headers and interpreter
/// name sit in the first page of every linker's output we know.
pub const HEAD_BYTES: usize = 4096;

/// How much of a file's head the kernel reads for its `#!` line
/// (`include/uapi/linux/binfmts.h`; 256 since Linux 5.1, 128 before).
pub const BINPRM_BUF_SIZE: usize = 256;

/// UTF-8's byte order mark, which editors on Windows put before `#!`.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// A `#!` line the kernel reads differently from what its author meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShebangFault {
    /// A `\r` before the newline (Windows line endings): the kernel keeps it
    /// as part of the last word, so `/bin/bash\r` is not found.
    CarriageReturn,
    /// A UTF-8 byte order mark before `#!`: the file does not start with `#!`.
    ByteOrderMark,
    /// No newline within the kernel's buffer; `interpreter_cut` when even the
    /// interpreter's path is cut (the kernel then refuses the file), else
    /// only its argument is.
    TooLong { interpreter_cut: bool },
}

/// What the kernel would do with a file it is asked to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `#!interpreter [argument]`.
    Script {
        interpreter: String,
        argument: Option<String>,
    },
    /// An ELF program, with the loader it names (None: statically linked).
    Elf { interpreter: Option<String> },
    /// An ELF whose program headers lie beyond the bytes read: read this many and ask again.
    NeedBytes(usize),
    /// A `#!` line the kernel would misread.
    BadShebang(ShebangFault),
    /// Neither: `exec format error`.
    Unknown,
}

/// What `head`, the first bytes of a file, says it is.
pub fn kind_of(head: &[u8]) -> Kind {
    if head.starts_with(BOM) && head[BOM.len()..].starts_with(b"#!") {
        return Kind::BadShebang(ShebangFault::ByteOrderMark);
    }
    if let Some(line) = head.strip_prefix(b"#!") {
        return match shebang_fault(head) {
            Some(fault) => Kind::BadShebang(fault),
            None => script(line),
        };
    }
    if head.starts_with(b"\x7fELF") {
        return match elf_interpreter(head) {
            Ok(interpreter) => Kind::Elf { interpreter },
            Err(Short(needed)) => Kind::NeedBytes(needed),
        };
    }
    Kind::Unknown
}

/// What is wrong with the `#!` line at the start of `head`, read as Linux's
/// `load_script` reads it: the newline must lie within the buffer, and only
/// spaces and tabs are stripped from the end of the line.
fn shebang_fault(head: &[u8]) -> Option<ShebangFault> {
    let buffer = &head[..head.len().min(BINPRM_BUF_SIZE)];
    let line = match buffer.iter().position(|b| *b == b'\n') {
        Some(end) => &buffer[..end],
        // The file ends within the buffer: the kernel pads it with NULs.
        None if head.len() < BINPRM_BUF_SIZE => buffer,
        None => {
            let last = &buffer[..BINPRM_BUF_SIZE - 1];
            let start = last[2..]
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t'))
                .map_or(last.len(), |i| i + 2);
            let interpreter_cut = !last[start..].iter().any(|b| matches!(b, b' ' | b'\t' | 0));
            return Some(ShebangFault::TooLong { interpreter_cut });
        }
    };
    let line = line.split(|b| *b == 0).next().unwrap_or_default();
    let kept = line
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(&line[..0], |i| &line[..=i]);
    kept.ends_with(b"\r")
        .then_some(ShebangFault::CarriageReturn)
}

/// The `#!` line after its first two bytes: the interpreter, and the rest as one argument (as Linux splits it).
fn script(line: &[u8]) -> Kind {
    let end = line.iter().position(|b| *b == b'\n').unwrap_or(line.len());
    let text = String::from_utf8_lossy(&line[..end]);
    let text = text.trim_matches([' ', '\t', '\r']);
    let (interpreter, argument) = match text.split_once([' ', '\t']) {
        Some((interpreter, rest)) => (interpreter, Some(rest.trim_matches([' ', '\t']))),
        None => (text, None),
    };
    Kind::Script {
        interpreter: interpreter.to_string(),
        argument: argument.filter(|a| !a.is_empty()).map(str::to_string),
    }
}

/// The program `/usr/bin/env ARGUMENT` runs: the first word that is not an
/// option (`-S` splits the rest into words, as GNU and busybox env do).
pub fn env_program(argument: &str) -> Option<String> {
    let mut words = argument.split_whitespace();
    while let Some(word) = words.next() {
        match word {
            "-S" | "--split-string" => continue,
            "-u" | "--unset" | "-C" | "--chdir" => {
                words.next();
            }
            _ if word.starts_with("-S") => return Some(word[2..].to_string()),
            _ if word.starts_with('-') || word.contains('=') => {}
            _ => return Some(word.to_string()),
        }
    }
    None
}

/// The bytes an ELF parse needed beyond those it had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Short(usize);

/// `PT_INTERP` of an ELF image, from its header and program headers.
fn elf_interpreter(bytes: &[u8]) -> Result<Option<String>, Short> {
    const PT_INTERP: u32 = 3;
    let class64 = *bytes.get(4).ok_or(Short(64))? == 2;
    let big = *bytes.get(5).ok_or(Short(64))? == 2;
    let elf = Elf { bytes, big };
    let (phoff, phentsize, phnum) = if class64 {
        (elf.u64(0x20)?, elf.u16(0x36)?, elf.u16(0x38)?)
    } else {
        (u64::from(elf.u32(0x1c)?), elf.u16(0x2a)?, elf.u16(0x2c)?)
    };
    for i in 0..u64::from(phnum) {
        let at = phoff.saturating_add(i * u64::from(phentsize));
        let at = usize::try_from(at).map_err(|_| Short(usize::MAX))?;
        if elf.u32(at)? != PT_INTERP {
            continue;
        }
        let (offset, size) = if class64 {
            (elf.u64(at + 8)?, elf.u64(at + 32)?)
        } else {
            (u64::from(elf.u32(at + 4)?), u64::from(elf.u32(at + 16)?))
        };
        let start = usize::try_from(offset).map_err(|_| Short(usize::MAX))?;
        let end = start.saturating_add(usize::try_from(size).map_err(|_| Short(usize::MAX))?);
        let name = bytes.get(start..end).ok_or(Short(end))?;
        let name = name.split(|b| *b == 0).next().unwrap_or_default();
        return Ok(Some(String::from_utf8_lossy(name).into_owned()));
    }
    Ok(None)
}

/// Fixed-width reads of an ELF image in its byte order.
struct Elf<'a> {
    bytes: &'a [u8],
    big: bool,
}

impl Elf<'_> {
    fn take<const N: usize>(&self, at: usize) -> Result<[u8; N], Short> {
        let end = at.saturating_add(N);
        self.bytes
            .get(at..end)
            .and_then(|b| b.try_into().ok())
            .ok_or(Short(end))
    }

    fn u16(&self, at: usize) -> Result<u16, Short> {
        let b = self.take::<2>(at)?;
        Ok(if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32(&self, at: usize) -> Result<u32, Short> {
        let b = self.take::<4>(at)?;
        Ok(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn u64(&self, at: usize) -> Result<u64, Short> {
        let b = self.take::<8>(at)?;
        Ok(if self.big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }
}
