//! The command line's grammar: clap definitions and the parsers of sizes and durations. Nothing runs here.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::spec;

#[derive(Parser, Debug)]
#[command(
    name = "stowage",
    version,
    about = "Export an application to an OCI image, without a container daemon"
)]
pub struct Cli {
    /// Print only the result.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Say more about what happens (repeatable).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print machine-readable JSON where the output is data.
    #[arg(long, global = true)]
    pub json: bool,
    /// Allow plain HTTP or unverified TLS for this registry host only (repeatable; loopback hosts need no flag for plain HTTP).
    #[arg(long = "insecure-registry", global = true, value_name = "HOST")]
    pub insecure_registry: Vec<String>,
    /// Give up on a registry that does not answer, or stops sending, for this many seconds [default: 60].
    #[arg(long, global = true, value_name = "SECS", env = "STOWAGE_TIMEOUT", value_parser = parse_seconds)]
    pub timeout: Option<std::time::Duration>,
    /// Give up connecting to a registry after this many seconds [default: 30].
    #[arg(long, global = true, value_name = "SECS", env = "STOWAGE_CONNECT_TIMEOUT", value_parser = parse_seconds)]
    pub connect_timeout: Option<std::time::Duration>,
    /// Retries of a failed registry request (connection errors, 408, 429, 5xx) [default: 5].
    #[arg(long, global = true, value_name = "N", env = "STOWAGE_RETRIES")]
    pub retries: Option<u32>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build the image described by a stowage.toml and write it to each destination.
    Build(BuildArgs),
    /// Copy an image between any two transports, keeping its digest (an index keeps all platforms).
    Copy {
        /// Source: REF or docker://REF, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF].
        source: String,
        /// Destination, in the same forms.
        dest: String,
        /// Copy only this platform of an index (and pick it for a docker-archive).
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
        #[command(flatten)]
        push: PushArgs,
    },
    /// Push an image to a registry: `copy` whose destination is a registry.
    Push {
        /// Source, any transport: oci:DIR[:TAG], docker-archive:FILE[:REF], REF…
        source: String,
        /// Registry destination: REF or docker://REF.
        dest: String,
        /// Also tag the pushed image with this tag (repeatable).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Push only this platform of an index.
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
        /// Sign the pushed image with this private key, in cosign's format (password from COSIGN_PASSWORD or a prompt).
        #[arg(long, value_name = "KEY")]
        sign_key: Option<PathBuf>,
        #[command(flatten)]
        push: PushArgs,
    },
    /// Sign an image in a registry with a private key, in cosign's format (tag sha256-<hex>.sig).
    Sign {
        /// The image: REF or docker://REF (its digest is read from the registry).
        reference: String,
        /// PEM private key: PKCS#8, SEC1 EC, or cosign's encrypted key (password from COSIGN_PASSWORD or a prompt).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
    },
    /// Check an image's cosign signatures against a public key; fails when none verifies.
    Verify {
        /// The image: REF or docker://REF.
        reference: String,
        /// PEM public key (SPKI), e.g. cosign.pub or `openssl pkey -pubout`'s output.
        #[arg(long, value_name = "PUB")]
        key: PathBuf,
    },
    /// Pull an image from a registry and write a docker-save tarball (.tar or .tar.gz).
    Archive {
        /// The image: REF or docker://REF.
        reference: String,
        /// The tarball to write; a name ending in .gz is gzipped.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
        /// Platform to pick from a multi-platform image (default: this machine's).
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
    },
    /// Check credentials against a registry and store them in Docker's config.json.
    Login {
        /// The registry (default: Docker Hub).
        registry: Option<String>,
        /// The username.
        #[arg(short = 'u', long = "username")]
        username: String,
        /// Read the password or token from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Forget the stored credentials for a registry.
    Logout {
        /// The registry (default: Docker Hub).
        registry: Option<String>,
    },
    /// Show an image's summary, or its exact manifest or config bytes.
    Inspect {
        /// The image: REF or docker://REF, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF].
        source: String,
        /// Print the exact bytes of the manifest (or index) or of the config.
        #[arg(long, value_enum)]
        raw: Option<RawPart>,
        /// Platform to show when the source is an index.
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
        /// Print the SPDX document of the image's SBOM attestation.
        #[arg(long, conflicts_with_all = ["raw", "provenance"])]
        sbom: bool,
        /// Print the SLSA provenance predicate of the image's provenance attestation.
        #[arg(long, conflicts_with = "raw")]
        provenance: bool,
    },
    /// Write a commented starter stowage.toml.
    Init {
        /// Folder to write it in (default: the current one).
        dir: Option<PathBuf>,
    },
    /// List past exports (builds, pushes, copies, archives), or delete one from where it went.
    Exports(ExportsArgs),
    /// Print the `docker run` line that starts an export: REF (read now) or an export ID.
    #[command(name = "run-command")]
    StartLine {
        /// A registry reference, docker-archive:FILE, or an id from `stowage exports`.
        target: String,
    },
    /// Bound the blob store (prune), or show what it holds (info).
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum CacheAction {
    /// Remove least-recently-used blobs and the cache records naming them; never a blob a running build or export holds.
    #[command(group(clap::ArgGroup::new("rule").required(true).multiple(true).args(["max_size", "older_than"])))]
    Prune {
        /// Remove blobs, least recently used first, until the store holds at most this much (e.g. 10GiB).
        #[arg(long, value_name = "SIZE", value_parser = parse_size, env = "STOWAGE_CACHE_MAX_SIZE")]
        max_size: Option<u64>,
        /// Remove blobs last used longer ago than this (e.g. 90m, 12h, 7d, 2w).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        older_than: Option<std::time::Duration>,
        /// Say what would be removed, and remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show the store's size, its blob count and what each cache holds.
    Info,
}

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ExportsArgs {
    #[command(subcommand)]
    pub action: Option<ExportsAction>,
    /// Show only exports with this status.
    #[arg(long, value_enum)]
    pub status: Option<StatusArg>,
}

#[derive(Subcommand, Debug)]
pub enum ExportsAction {
    /// List exports, oldest first (the default).
    List {
        /// Show only exports with this status.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
    },
    /// Delete what an export put in its registry, layout or archive file, and mark the record deleted.
    ///
    /// Only the export's own tag goes: a manifest other tags point at stays
    /// (or, where the registry cannot delete a tag alone, the delete is refused
    /// and names those tags). On a terminal it shows what it will remove and asks first.
    Delete {
        /// The id from `stowage exports`.
        id: i64,
        /// Delete without asking (for scripts; without a terminal it is required).
        #[arg(long, short = 'y')]
        yes: bool,
        /// Also delete every other tag that points at the export's image (the prompt lists them);
        /// the other exports that held them are marked deleted too.
        #[arg(long)]
        all_tags: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum StatusArg {
    Ok,
    Failed,
    Interrupted,
    Deleted,
}

/// How blobs are pushed.
#[derive(clap::Args, Debug, Clone)]
pub struct PushArgs {
    /// Upload blobs in chunks of this size (e.g. 16MiB) instead of one streamed request.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub chunk_size: Option<u64>,
    /// Blobs pushed at once.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
}

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// The spec file.
    #[arg(short = 'f', long = "file", default_value = spec::SPEC_FILE_NAME)]
    pub file: PathBuf,
    /// Destination (repeatable): oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE.tar[.gz][:REF].
    #[arg(short = 'o', long = "output", value_name = "DEST")]
    pub outputs: Vec<String>,
    /// Leave the workspace out of the image.
    #[arg(long)]
    pub no_workspace: bool,
    /// Platform to pick from a multi-platform base (and to record for scratch).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Manifest family (default: the base's; OCI for scratch).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Layer compression.
    #[arg(long, value_enum, default_value_t = CompressionArg::Gzip)]
    pub compression: CompressionArg,
    /// Write the image digest to this file.
    #[arg(long, value_name = "FILE")]
    pub digest_file: Option<PathBuf>,
    /// Write build metadata (digest, layers) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
    /// Write an SBOM of the image (base and every package found in the library) to this file.
    #[arg(long, value_name = "FILE")]
    pub sbom: Option<PathBuf>,
    /// The SBOM's format.
    #[arg(long, value_enum, default_value_t = SbomFormatArg::Spdx, requires = "sbom")]
    pub sbom_format: SbomFormatArg,
    /// Print the plan (layers, packages, sources, sizes) and write nothing; needs no destination.
    #[arg(long)]
    pub dry_run: bool,
    /// Split the library into at most this many layers by package (1: one layer).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub library_layers: u16,
    /// Never download the base's layers: parent folders of targets get root-owned 0755
    /// instead of the base's own owner and mode (read once per base and cached otherwise).
    #[arg(long)]
    pub keep_base_remote: bool,
    /// Compression threads (default: one per core); the image is the same for any count.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    /// Let the secret scan pass this path in the image (a file, or a folder and all in it),
    /// or this spec value meant to be public (`env.NAME`, `labels.KEY`, `command`, `entrypoint`); repeatable.
    #[arg(long = "allow-secret", value_name = "PATH|KEY")]
    pub allow_secrets: Vec<String>,
    /// Do not scan the added files (and the spec's values) for keys, tokens and credential files.
    #[arg(long)]
    pub no_secret_scan: bool,
    /// Do not check that the image's entrypoint and command would start (program, #! interpreter, ELF loader, user).
    #[arg(long)]
    pub no_start_check: bool,
    /// Sign the image each registry destination received with this private key, in cosign's format.
    #[arg(long, value_name = "KEY")]
    pub sign_key: Option<PathBuf>,
    /// Attach an attestation to the image, as BuildKit stores them (repeatable; adds to the spec's [attest]).
    #[arg(long, value_enum, value_name = "KIND")]
    pub attest: Vec<AttestArg>,
    /// Share the content cache through this registry repository (e.g. registry.example.org/team/stowage-cache):
    /// read before the build, updated after it; its blobs are mounted, not compressed or uploaded again.
    #[arg(long, value_name = "REF", env = "STOWAGE_CACHE_REPO")]
    pub cache_repo: Option<String>,
    #[command(flatten)]
    pub push: PushArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum FormatArg {
    Oci,
    Docker,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttestArg {
    /// An SPDX document of the image's packages (in-toto predicate https://spdx.dev/Document)
    Sbom,
    /// SLSA provenance v1: builder, spec, base, sources, parameters
    Provenance,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum SbomFormatArg {
    /// SPDX 2.3 JSON
    Spdx,
    /// CycloneDX 1.6 JSON
    Cyclonedx,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum CompressionArg {
    Gzip,
    Zstd,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum RawPart {
    Manifest,
    Config,
}

/// Parses a duration in seconds: `30`, `0.5`.
pub fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 1e9)
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("`{text}` is not a number of seconds above 0"))
}

/// Parses a duration with a unit: `90s`, `30m`, `12h`, `7d`, `2w`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let hint = "a number and a unit, like 90s, 30m, 12h, 7d or 2w";
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (hint: {hint})"))?;
    let seconds = match unit.trim().to_ascii_lowercase().as_str() {
        "s" | "sec" | "secs" => 1,
        "m" | "min" | "mins" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        "" => return Err(format!("`{text}` has no unit (hint: {hint})")),
        _ => return Err(format!("`{text}` has an unknown unit (hint: {hint})")),
    };
    number
        .checked_mul(seconds)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("`{text}` is too long a duration (hint: {hint})"))
}

/// Parses a byte size: `1048576`, `512KiB`, `16MiB`, `1GiB`, `1TiB` (K/M/G/T are binary too).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size like 16MiB"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit (use KiB, MiB, GiB or TiB)"
            ));
        }
    };
    number
        .checked_mul(factor)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{text}` is not a usable size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12 parsecs").is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(
            parse_duration("90s"),
            Ok(std::time::Duration::from_secs(90))
        );
        assert_eq!(
            parse_duration("7d"),
            Ok(std::time::Duration::from_secs(7 * 86_400))
        );
        assert_eq!(
            parse_duration("2 w"),
            Ok(std::time::Duration::from_secs(14 * 86_400))
        );
        for bad in ["", "7", "d", "7 fortnights", "-1h", "99999999999999999999w"] {
            let error = parse_duration(bad).unwrap_err();
            assert!(error.contains("hint: "), "{bad}: {error}");
        }
    }

    #[test]
    fn seconds_parse() {
        assert_eq!(
            parse_seconds("1.5"),
            Ok(std::time::Duration::from_millis(1500))
        );
        for bad in ["0", "-1", "soon", "NaN", "inf"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
