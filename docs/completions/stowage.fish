# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_stowage_global_optspecs
    string join \n q/quiet v/verbose json insecure-registry= timeout= connect-timeout= retries= h/help V/version
end

function __fish_stowage_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_stowage_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_stowage_using_subcommand
    set -l cmd (__fish_stowage_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c stowage -n "__fish_stowage_needs_command" -l insecure-registry -d 'Allow plain HTTP or unverified TLS for this registry host only (repeatable; loopback hosts need no flag for plain HTTP)' -r
complete -c stowage -n "__fish_stowage_needs_command" -l timeout -d 'Give up on a registry that does not answer, or stops sending, for this many seconds [default: 60]' -r
complete -c stowage -n "__fish_stowage_needs_command" -l connect-timeout -d 'Give up connecting to a registry after this many seconds [default: 30]' -r
complete -c stowage -n "__fish_stowage_needs_command" -l retries -d 'Retries of a failed registry request (connection errors, 408, 429, 5xx) [default: 5]' -r
complete -c stowage -n "__fish_stowage_needs_command" -s q -l quiet -d 'Print only the result'
complete -c stowage -n "__fish_stowage_needs_command" -s v -l verbose -d 'Say more about what happens (repeatable)'
complete -c stowage -n "__fish_stowage_needs_command" -l json -d 'Print machine-readable JSON where the output is data'
complete -c stowage -n "__fish_stowage_needs_command" -s h -l help -d 'Print help'
complete -c stowage -n "__fish_stowage_needs_command" -s V -l version -d 'Print version'
complete -c stowage -n "__fish_stowage_needs_command" -f -a "build" -d 'Build the image described by a stowage.toml and write it to each destination'
complete -c stowage -n "__fish_stowage_needs_command" -f -a "copy" -d 'Copy an image between any two transports, keeping its digest (an index keeps all platforms)'
complete -c stowage -n "__fish_stowage_needs_command" -f -a "push" -d 'Push an image to a registry: `copy` whose destination is a registry'
complete -c stowage -n "__fish_stowage_needs_command" -f -a "sign" -d 'Sign an image in a registry with a private key, in cosign\'s format (tag sha256-<hex>.sig)'
complete -c stowage -n "__fish_stowage_needs_command" -f -a "verify" -d 'Check an image\'s cosign signatures against a public key; fails when none verifies'
complete -c stowage -n "__fish_stowage_needs_command" -f -a "archive" -d 'Pull an image from a registry and write a docker-save tarball (.tar or .tar.gz)'
complete -c stowage -n "__fish_stowage_needs_command" -f -a "login" -d 'Check credentials against a registry and store them in Docker\'s config.json'
complete -c stowage -n "__fish_stowage_needs_command" -f -a "logout" -d 'Forget the stored credentials for a registry'
complete -c stowage -n "__fish_stowage_needs_command" -f -a "inspect" -d 'Show an image\'s summary, or its exact manifest or config bytes'
complete -c stowage -n "__fish_stowage_needs_command" -f -a "init" -d 'Write a commented starter stowage.toml'
complete -c stowage -n "__fish_stowage_needs_command" -f -a "exports" -d 'List past exports (builds, pushes, copies, archives), or delete one from where it went'
complete -c stowage -n "__fish_stowage_needs_command" -f -a "run-command" -d 'Print the `docker run` line that starts an export: REF (read now) or an export ID'
complete -c stowage -n "__fish_stowage_needs_command" -f -a "cache" -d 'Bound the blob store (prune), or show what it holds (info)'
complete -c stowage -n "__fish_stowage_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c stowage -n "__fish_stowage_using_subcommand build" -s f -l file -d 'The spec file' -r -F
complete -c stowage -n "__fish_stowage_using_subcommand build" -s o -l output -d 'Destination (repeatable): oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE.tar[.gz][:REF]' -r
complete -c stowage -n "__fish_stowage_using_subcommand build" -l platform -d 'Platform to pick from a multi-platform base (and to record for scratch)' -r
complete -c stowage -n "__fish_stowage_using_subcommand build" -l format -d 'Manifest family (default: the base\'s; OCI for scratch)' -r -f -a "oci\t''
docker\t''"
complete -c stowage -n "__fish_stowage_using_subcommand build" -l compression -d 'Layer compression' -r -f -a "gzip\t''
zstd\t''"
complete -c stowage -n "__fish_stowage_using_subcommand build" -l digest-file -d 'Write the image digest to this file' -r -F
complete -c stowage -n "__fish_stowage_using_subcommand build" -l metadata-file -d 'Write build metadata (digest, layers) as JSON to this file' -r -F
complete -c stowage -n "__fish_stowage_using_subcommand build" -l sbom -d 'Write an SBOM of the image (base and every package found in the library) to this file' -r -F
complete -c stowage -n "__fish_stowage_using_subcommand build" -l sbom-format -d 'The SBOM\'s format' -r -f -a "spdx\t'SPDX 2.3 JSON'
cyclonedx\t'CycloneDX 1.6 JSON'"
complete -c stowage -n "__fish_stowage_using_subcommand build" -l library-layers -d 'Split the library into at most this many layers by package (1: one layer)' -r
complete -c stowage -n "__fish_stowage_using_subcommand build" -l threads -d 'Compression threads (default: one per core); the image is the same for any count' -r
complete -c stowage -n "__fish_stowage_using_subcommand build" -l allow-secret -d 'Let the secret scan pass this path in the image (a file, or a folder and all in it), or this spec value meant to be public (`env.NAME`, `labels.KEY`, `command`, `entrypoint`); repeatable' -r
complete -c stowage -n "__fish_stowage_using_subcommand build" -l sign-key -d 'Sign the image each registry destination received with this private key, in cosign\'s format' -r -F
complete -c stowage -n "__fish_stowage_using_subcommand build" -l attest -d 'Attach an attestation to the image, as BuildKit stores them (repeatable; adds to the spec\'s [attest])' -r -f -a "sbom\t'An SPDX document of the image\'s packages (in-toto predicate https://spdx.dev/Document)'
provenance\t'SLSA provenance v1: builder, spec, base, sources, parameters'"
complete -c stowage -n "__fish_stowage_using_subcommand build" -l cache-repo -d 'Share the content cache through this registry repository (e.g. registry.example.org/team/stowage-cache): read before the build, updated after it; its blobs are mounted, not compressed or uploaded again' -r
complete -c stowage -n "__fish_stowage_using_subcommand build" -l chunk-size -d 'Upload blobs in chunks of this size (e.g. 16MiB) instead of one streamed request' -r
complete -c stowage -n "__fish_stowage_using_subcommand build" -l jobs -d 'Blobs pushed at once' -r
complete -c stowage -n "__fish_stowage_using_subcommand build" -l insecure-registry -d 'Allow plain HTTP or unverified TLS for this registry host only (repeatable; loopback hosts need no flag for plain HTTP)' -r
complete -c stowage -n "__fish_stowage_using_subcommand build" -l timeout -d 'Give up on a registry that does not answer, or stops sending, for this many seconds [default: 60]' -r
complete -c stowage -n "__fish_stowage_using_subcommand build" -l connect-timeout -d 'Give up connecting to a registry after this many seconds [default: 30]' -r
complete -c stowage -n "__fish_stowage_using_subcommand build" -l retries -d 'Retries of a failed registry request (connection errors, 408, 429, 5xx) [default: 5]' -r
complete -c stowage -n "__fish_stowage_using_subcommand build" -l no-workspace -d 'Leave the workspace out of the image'
complete -c stowage -n "__fish_stowage_using_subcommand build" -l dry-run -d 'Print the plan (layers, packages, sources, sizes) and write nothing; needs no destination'
complete -c stowage -n "__fish_stowage_using_subcommand build" -l keep-base-remote -d 'Never download the base\'s layers: parent folders of targets get root-owned 0755 instead of the base\'s own owner and mode (read once per base and cached otherwise)'
complete -c stowage -n "__fish_stowage_using_subcommand build" -l no-secret-scan -d 'Do not scan the added files (and the spec\'s values) for keys, tokens and credential files'
complete -c stowage -n "__fish_stowage_using_subcommand build" -l no-start-check -d 'Do not check that the image\'s entrypoint and command would start (program, #! interpreter, ELF loader, user)'
complete -c stowage -n "__fish_stowage_using_subcommand build" -s q -l quiet -d 'Print only the result'
complete -c stowage -n "__fish_stowage_using_subcommand build" -s v -l verbose -d 'Say more about what happens (repeatable)'
complete -c stowage -n "__fish_stowage_using_subcommand build" -l json -d 'Print machine-readable JSON where the output is data'
complete -c stowage -n "__fish_stowage_using_subcommand build" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c stowage -n "__fish_stowage_using_subcommand copy" -l platform -d 'Copy only this platform of an index (and pick it for a docker-archive)' -r
complete -c stowage -n "__fish_stowage_using_subcommand copy" -l chunk-size -d 'Upload blobs in chunks of this size (e.g. 16MiB) instead of one streamed request' -r
complete -c stowage -n "__fish_stowage_using_subcommand copy" -l jobs -d 'Blobs pushed at once' -r
complete -c stowage -n "__fish_stowage_using_subcommand copy" -l insecure-registry -d 'Allow plain HTTP or unverified TLS for this registry host only (repeatable; loopback hosts need no flag for plain HTTP)' -r
complete -c stowage -n "__fish_stowage_using_subcommand copy" -l timeout -d 'Give up on a registry that does not answer, or stops sending, for this many seconds [default: 60]' -r
complete -c stowage -n "__fish_stowage_using_subcommand copy" -l connect-timeout -d 'Give up connecting to a registry after this many seconds [default: 30]' -r
complete -c stowage -n "__fish_stowage_using_subcommand copy" -l retries -d 'Retries of a failed registry request (connection errors, 408, 429, 5xx) [default: 5]' -r
complete -c stowage -n "__fish_stowage_using_subcommand copy" -s q -l quiet -d 'Print only the result'
complete -c stowage -n "__fish_stowage_using_subcommand copy" -s v -l verbose -d 'Say more about what happens (repeatable)'
complete -c stowage -n "__fish_stowage_using_subcommand copy" -l json -d 'Print machine-readable JSON where the output is data'
complete -c stowage -n "__fish_stowage_using_subcommand copy" -s h -l help -d 'Print help'
complete -c stowage -n "__fish_stowage_using_subcommand push" -l tag -d 'Also tag the pushed image with this tag (repeatable)' -r
complete -c stowage -n "__fish_stowage_using_subcommand push" -l platform -d 'Push only this platform of an index' -r
complete -c stowage -n "__fish_stowage_using_subcommand push" -l sign-key -d 'Sign the pushed image with this private key, in cosign\'s format (password from COSIGN_PASSWORD or a prompt)' -r -F
complete -c stowage -n "__fish_stowage_using_subcommand push" -l chunk-size -d 'Upload blobs in chunks of this size (e.g. 16MiB) instead of one streamed request' -r
complete -c stowage -n "__fish_stowage_using_subcommand push" -l jobs -d 'Blobs pushed at once' -r
complete -c stowage -n "__fish_stowage_using_subcommand push" -l insecure-registry -d 'Allow plain HTTP or unverified TLS for this registry host only (repeatable; loopback hosts need no flag for plain HTTP)' -r
complete -c stowage -n "__fish_stowage_using_subcommand push" -l timeout -d 'Give up on a registry that does not answer, or stops sending, for this many seconds [default: 60]' -r
complete -c stowage -n "__fish_stowage_using_subcommand push" -l connect-timeout -d 'Give up connecting to a registry after this many seconds [default: 30]' -r
complete -c stowage -n "__fish_stowage_using_subcommand push" -l retries -d 'Retries of a failed registry request (connection errors, 408, 429, 5xx) [default: 5]' -r
complete -c stowage -n "__fish_stowage_using_subcommand push" -s q -l quiet -d 'Print only the result'
complete -c stowage -n "__fish_stowage_using_subcommand push" -s v -l verbose -d 'Say more about what happens (repeatable)'
complete -c stowage -n "__fish_stowage_using_subcommand push" -l json -d 'Print machine-readable JSON where the output is data'
complete -c stowage -n "__fish_stowage_using_subcommand push" -s h -l help -d 'Print help'
complete -c stowage -n "__fish_stowage_using_subcommand sign" -l key -d 'PEM private key: PKCS#8, SEC1 EC, or cosign\'s encrypted key (password from COSIGN_PASSWORD or a prompt)' -r -F
complete -c stowage -n "__fish_stowage_using_subcommand sign" -l insecure-registry -d 'Allow plain HTTP or unverified TLS for this registry host only (repeatable; loopback hosts need no flag for plain HTTP)' -r
complete -c stowage -n "__fish_stowage_using_subcommand sign" -l timeout -d 'Give up on a registry that does not answer, or stops sending, for this many seconds [default: 60]' -r
complete -c stowage -n "__fish_stowage_using_subcommand sign" -l connect-timeout -d 'Give up connecting to a registry after this many seconds [default: 30]' -r
complete -c stowage -n "__fish_stowage_using_subcommand sign" -l retries -d 'Retries of a failed registry request (connection errors, 408, 429, 5xx) [default: 5]' -r
complete -c stowage -n "__fish_stowage_using_subcommand sign" -s q -l quiet -d 'Print only the result'
complete -c stowage -n "__fish_stowage_using_subcommand sign" -s v -l verbose -d 'Say more about what happens (repeatable)'
complete -c stowage -n "__fish_stowage_using_subcommand sign" -l json -d 'Print machine-readable JSON where the output is data'
complete -c stowage -n "__fish_stowage_using_subcommand sign" -s h -l help -d 'Print help'
complete -c stowage -n "__fish_stowage_using_subcommand verify" -l key -d 'PEM public key (SPKI), e.g. cosign.pub or `openssl pkey -pubout`\'s output' -r -F
complete -c stowage -n "__fish_stowage_using_subcommand verify" -l insecure-registry -d 'Allow plain HTTP or unverified TLS for this registry host only (repeatable; loopback hosts need no flag for plain HTTP)' -r
complete -c stowage -n "__fish_stowage_using_subcommand verify" -l timeout -d 'Give up on a registry that does not answer, or stops sending, for this many seconds [default: 60]' -r
complete -c stowage -n "__fish_stowage_using_subcommand verify" -l connect-timeout -d 'Give up connecting to a registry after this many seconds [default: 30]' -r
complete -c stowage -n "__fish_stowage_using_subcommand verify" -l retries -d 'Retries of a failed registry request (connection errors, 408, 429, 5xx) [default: 5]' -r
complete -c stowage -n "__fish_stowage_using_subcommand verify" -s q -l quiet -d 'Print only the result'
complete -c stowage -n "__fish_stowage_using_subcommand verify" -s v -l verbose -d 'Say more about what happens (repeatable)'
complete -c stowage -n "__fish_stowage_using_subcommand verify" -l json -d 'Print machine-readable JSON where the output is data'
complete -c stowage -n "__fish_stowage_using_subcommand verify" -s h -l help -d 'Print help'
complete -c stowage -n "__fish_stowage_using_subcommand archive" -s o -l output -d 'The tarball to write; a name ending in .gz is gzipped' -r -F
complete -c stowage -n "__fish_stowage_using_subcommand archive" -l platform -d 'Platform to pick from a multi-platform image (default: this machine\'s)' -r
complete -c stowage -n "__fish_stowage_using_subcommand archive" -l insecure-registry -d 'Allow plain HTTP or unverified TLS for this registry host only (repeatable; loopback hosts need no flag for plain HTTP)' -r
complete -c stowage -n "__fish_stowage_using_subcommand archive" -l timeout -d 'Give up on a registry that does not answer, or stops sending, for this many seconds [default: 60]' -r
complete -c stowage -n "__fish_stowage_using_subcommand archive" -l connect-timeout -d 'Give up connecting to a registry after this many seconds [default: 30]' -r
complete -c stowage -n "__fish_stowage_using_subcommand archive" -l retries -d 'Retries of a failed registry request (connection errors, 408, 429, 5xx) [default: 5]' -r
complete -c stowage -n "__fish_stowage_using_subcommand archive" -s q -l quiet -d 'Print only the result'
complete -c stowage -n "__fish_stowage_using_subcommand archive" -s v -l verbose -d 'Say more about what happens (repeatable)'
complete -c stowage -n "__fish_stowage_using_subcommand archive" -l json -d 'Print machine-readable JSON where the output is data'
complete -c stowage -n "__fish_stowage_using_subcommand archive" -s h -l help -d 'Print help'
complete -c stowage -n "__fish_stowage_using_subcommand login" -s u -l username -d 'The username' -r
complete -c stowage -n "__fish_stowage_using_subcommand login" -l insecure-registry -d 'Allow plain HTTP or unverified TLS for this registry host only (repeatable; loopback hosts need no flag for plain HTTP)' -r
complete -c stowage -n "__fish_stowage_using_subcommand login" -l timeout -d 'Give up on a registry that does not answer, or stops sending, for this many seconds [default: 60]' -r
complete -c stowage -n "__fish_stowage_using_subcommand login" -l connect-timeout -d 'Give up connecting to a registry after this many seconds [default: 30]' -r
complete -c stowage -n "__fish_stowage_using_subcommand login" -l retries -d 'Retries of a failed registry request (connection errors, 408, 429, 5xx) [default: 5]' -r
complete -c stowage -n "__fish_stowage_using_subcommand login" -l password-stdin -d 'Read the password or token from standard input'
complete -c stowage -n "__fish_stowage_using_subcommand login" -s q -l quiet -d 'Print only the result'
complete -c stowage -n "__fish_stowage_using_subcommand login" -s v -l verbose -d 'Say more about what happens (repeatable)'
complete -c stowage -n "__fish_stowage_using_subcommand login" -l json -d 'Print machine-readable JSON where the output is data'
complete -c stowage -n "__fish_stowage_using_subcommand login" -s h -l help -d 'Print help'
complete -c stowage -n "__fish_stowage_using_subcommand logout" -l insecure-registry -d 'Allow plain HTTP or unverified TLS for this registry host only (repeatable; loopback hosts need no flag for plain HTTP)' -r
complete -c stowage -n "__fish_stowage_using_subcommand logout" -l timeout -d 'Give up on a registry that does not answer, or stops sending, for this many seconds [default: 60]' -r
complete -c stowage -n "__fish_stowage_using_subcommand logout" -l connect-timeout -d 'Give up connecting to a registry after this many seconds [default: 30]' -r
complete -c stowage -n "__fish_stowage_using_subcommand logout" -l retries -d 'Retries of a failed registry request (connection errors, 408, 429, 5xx) [default: 5]' -r
complete -c stowage -n "__fish_stowage_using_subcommand logout" -s q -l quiet -d 'Print only the result'
complete -c stowage -n "__fish_stowage_using_subcommand logout" -s v -l verbose -d 'Say more about what happens (repeatable)'
complete -c stowage -n "__fish_stowage_using_subcommand logout" -l json -d 'Print machine-readable JSON where the output is data'
complete -c stowage -n "__fish_stowage_using_subcommand logout" -s h -l help -d 'Print help'
complete -c stowage -n "__fish_stowage_using_subcommand inspect" -l raw -d 'Print the exact bytes of the manifest (or index) or of the config' -r -f -a "manifest\t''
config\t''"
complete -c stowage -n "__fish_stowage_using_subcommand inspect" -l platform -d 'Platform to show when the source is an index' -r
complete -c stowage -n "__fish_stowage_using_subcommand inspect" -l insecure-registry -d 'Allow plain HTTP or unverified TLS for this registry host only (repeatable; loopback hosts need no flag for plain HTTP)' -r
complete -c stowage -n "__fish_stowage_using_subcommand inspect" -l timeout -d 'Give up on a registry that does not answer, or stops sending, for this many seconds [default: 60]' -r
complete -c stowage -n "__fish_stowage_using_subcommand inspect" -l connect-timeout -d 'Give up connecting to a registry after this many seconds [default: 30]' -r
complete -c stowage -n "__fish_stowage_using_subcommand inspect" -l retries -d 'Retries of a failed registry request (connection errors, 408, 429, 5xx) [default: 5]' -r
complete -c stowage -n "__fish_stowage_using_subcommand inspect" -l sbom -d 'Print the SPDX document of the image\'s SBOM attestation'
complete -c stowage -n "__fish_stowage_using_subcommand inspect" -l provenance -d 'Print the SLSA provenance predicate of the image\'s provenance attestation'
complete -c stowage -n "__fish_stowage_using_subcommand inspect" -s q -l quiet -d 'Print only the result'
complete -c stowage -n "__fish_stowage_using_subcommand inspect" -s v -l verbose -d 'Say more about what happens (repeatable)'
complete -c stowage -n "__fish_stowage_using_subcommand inspect" -l json -d 'Print machine-readable JSON where the output is data'
complete -c stowage -n "__fish_stowage_using_subcommand inspect" -s h -l help -d 'Print help'
complete -c stowage -n "__fish_stowage_using_subcommand init" -l insecure-registry -d 'Allow plain HTTP or unverified TLS for this registry host only (repeatable; loopback hosts need no flag for plain HTTP)' -r
complete -c stowage -n "__fish_stowage_using_subcommand init" -l timeout -d 'Give up on a registry that does not answer, or stops sending, for this many seconds [default: 60]' -r
complete -c stowage -n "__fish_stowage_using_subcommand init" -l connect-timeout -d 'Give up connecting to a registry after this many seconds [default: 30]' -r
complete -c stowage -n "__fish_stowage_using_subcommand init" -l retries -d 'Retries of a failed registry request (connection errors, 408, 429, 5xx) [default: 5]' -r
complete -c stowage -n "__fish_stowage_using_subcommand init" -s q -l quiet -d 'Print only the result'
complete -c stowage -n "__fish_stowage_using_subcommand init" -s v -l verbose -d 'Say more about what happens (repeatable)'
complete -c stowage -n "__fish_stowage_using_subcommand init" -l json -d 'Print machine-readable JSON where the output is data'
complete -c stowage -n "__fish_stowage_using_subcommand init" -s h -l help -d 'Print help'
complete -c stowage -n "__fish_stowage_using_subcommand exports; and not __fish_seen_subcommand_from list delete help" -l status -d 'Show only exports with this status' -r -f -a "ok\t''
failed\t''
interrupted\t''
deleted\t''"
complete -c stowage -n "__fish_stowage_using_subcommand exports; and not __fish_seen_subcommand_from list delete help" -l insecure-registry -d 'Allow plain HTTP or unverified TLS for this registry host only (repeatable; loopback hosts need no flag for plain HTTP)' -r
complete -c stowage -n "__fish_stowage_using_subcommand exports; and not __fish_seen_subcommand_from list delete help" -l timeout -d 'Give up on a registry that does not answer, or stops sending, for this many seconds [default: 60]' -r
complete -c stowage -n "__fish_stowage_using_subcommand exports; and not __fish_seen_subcommand_from list delete help" -l connect-timeout -d 'Give up connecting to a registry after this many seconds [default: 30]' -r
complete -c stowage -n "__fish_stowage_using_subcommand exports; and not __fish_seen_subcommand_from list delete help" -l retries -d 'Retries of a failed registry request (connection errors, 408, 429, 5xx) [default: 5]' -r
complete -c stowage -n "__fish_stowage_using_subcommand exports; and not __fish_seen_subcommand_from list delete help" -s q -l quiet -d 'Print only the result'
complete -c stowage -n "__fish_stowage_using_subcommand exports; and not __fish_seen_subcommand_from list delete help" -s v -l verbose -d 'Say more about what happens (repeatable)'
complete -c stowage -n "__fish_stowage_using_subcommand exports; and not __fish_seen_subcommand_from list delete help" -l json -d 'Print machine-readable JSON where the output is data'
complete -c stowage -n "__fish_stowage_using_subcommand exports; and not __fish_seen_subcommand_from list delete help" -s h -l help -d 'Print help'
complete -c stowage -n "__fish_stowage_using_subcommand exports; and not __fish_seen_subcommand_from list delete help" -f -a "list" -d 'List exports, oldest first (the default)'
complete -c stowage -n "__fish_stowage_using_subcommand exports; and not __fish_seen_subcommand_from list delete help" -f -a "delete" -d 'Delete what an export put in its registry, layout or archive file, and mark the record deleted'
complete -c stowage -n "__fish_stowage_using_subcommand exports; and not __fish_seen_subcommand_from list delete help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from list" -l status -d 'Show only exports with this status' -r -f -a "ok\t''
failed\t''
interrupted\t''
deleted\t''"
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from list" -l insecure-registry -d 'Allow plain HTTP or unverified TLS for this registry host only (repeatable; loopback hosts need no flag for plain HTTP)' -r
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from list" -l timeout -d 'Give up on a registry that does not answer, or stops sending, for this many seconds [default: 60]' -r
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from list" -l connect-timeout -d 'Give up connecting to a registry after this many seconds [default: 30]' -r
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from list" -l retries -d 'Retries of a failed registry request (connection errors, 408, 429, 5xx) [default: 5]' -r
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only the result'
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Say more about what happens (repeatable)'
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from list" -l json -d 'Print machine-readable JSON where the output is data'
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from delete" -l insecure-registry -d 'Allow plain HTTP or unverified TLS for this registry host only (repeatable; loopback hosts need no flag for plain HTTP)' -r
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from delete" -l timeout -d 'Give up on a registry that does not answer, or stops sending, for this many seconds [default: 60]' -r
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from delete" -l connect-timeout -d 'Give up connecting to a registry after this many seconds [default: 30]' -r
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from delete" -l retries -d 'Retries of a failed registry request (connection errors, 408, 429, 5xx) [default: 5]' -r
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from delete" -s y -l yes -d 'Delete without asking (for scripts; without a terminal it is required)'
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from delete" -l all-tags -d 'Also delete every other tag that points at the export\'s image (the prompt lists them); the other exports that held them are marked deleted too'
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from delete" -s q -l quiet -d 'Print only the result'
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from delete" -s v -l verbose -d 'Say more about what happens (repeatable)'
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from delete" -l json -d 'Print machine-readable JSON where the output is data'
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from help" -f -a "list" -d 'List exports, oldest first (the default)'
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete what an export put in its registry, layout or archive file, and mark the record deleted'
complete -c stowage -n "__fish_stowage_using_subcommand exports; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c stowage -n "__fish_stowage_using_subcommand run-command" -l insecure-registry -d 'Allow plain HTTP or unverified TLS for this registry host only (repeatable; loopback hosts need no flag for plain HTTP)' -r
complete -c stowage -n "__fish_stowage_using_subcommand run-command" -l timeout -d 'Give up on a registry that does not answer, or stops sending, for this many seconds [default: 60]' -r
complete -c stowage -n "__fish_stowage_using_subcommand run-command" -l connect-timeout -d 'Give up connecting to a registry after this many seconds [default: 30]' -r
complete -c stowage -n "__fish_stowage_using_subcommand run-command" -l retries -d 'Retries of a failed registry request (connection errors, 408, 429, 5xx) [default: 5]' -r
complete -c stowage -n "__fish_stowage_using_subcommand run-command" -s q -l quiet -d 'Print only the result'
complete -c stowage -n "__fish_stowage_using_subcommand run-command" -s v -l verbose -d 'Say more about what happens (repeatable)'
complete -c stowage -n "__fish_stowage_using_subcommand run-command" -l json -d 'Print machine-readable JSON where the output is data'
complete -c stowage -n "__fish_stowage_using_subcommand run-command" -s h -l help -d 'Print help'
complete -c stowage -n "__fish_stowage_using_subcommand cache; and not __fish_seen_subcommand_from prune info help" -l insecure-registry -d 'Allow plain HTTP or unverified TLS for this registry host only (repeatable; loopback hosts need no flag for plain HTTP)' -r
complete -c stowage -n "__fish_stowage_using_subcommand cache; and not __fish_seen_subcommand_from prune info help" -l timeout -d 'Give up on a registry that does not answer, or stops sending, for this many seconds [default: 60]' -r
complete -c stowage -n "__fish_stowage_using_subcommand cache; and not __fish_seen_subcommand_from prune info help" -l connect-timeout -d 'Give up connecting to a registry after this many seconds [default: 30]' -r
complete -c stowage -n "__fish_stowage_using_subcommand cache; and not __fish_seen_subcommand_from prune info help" -l retries -d 'Retries of a failed registry request (connection errors, 408, 429, 5xx) [default: 5]' -r
complete -c stowage -n "__fish_stowage_using_subcommand cache; and not __fish_seen_subcommand_from prune info help" -s q -l quiet -d 'Print only the result'
complete -c stowage -n "__fish_stowage_using_subcommand cache; and not __fish_seen_subcommand_from prune info help" -s v -l verbose -d 'Say more about what happens (repeatable)'
complete -c stowage -n "__fish_stowage_using_subcommand cache; and not __fish_seen_subcommand_from prune info help" -l json -d 'Print machine-readable JSON where the output is data'
complete -c stowage -n "__fish_stowage_using_subcommand cache; and not __fish_seen_subcommand_from prune info help" -s h -l help -d 'Print help'
complete -c stowage -n "__fish_stowage_using_subcommand cache; and not __fish_seen_subcommand_from prune info help" -f -a "prune" -d 'Remove least-recently-used blobs and the cache records naming them; never a blob a running build or export holds'
complete -c stowage -n "__fish_stowage_using_subcommand cache; and not __fish_seen_subcommand_from prune info help" -f -a "info" -d 'Show the store\'s size, its blob count and what each cache holds'
complete -c stowage -n "__fish_stowage_using_subcommand cache; and not __fish_seen_subcommand_from prune info help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from prune" -l max-size -d 'Remove blobs, least recently used first, until the store holds at most this much (e.g. 10GiB)' -r
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from prune" -l older-than -d 'Remove blobs last used longer ago than this (e.g. 90m, 12h, 7d, 2w)' -r
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from prune" -l insecure-registry -d 'Allow plain HTTP or unverified TLS for this registry host only (repeatable; loopback hosts need no flag for plain HTTP)' -r
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from prune" -l timeout -d 'Give up on a registry that does not answer, or stops sending, for this many seconds [default: 60]' -r
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from prune" -l connect-timeout -d 'Give up connecting to a registry after this many seconds [default: 30]' -r
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from prune" -l retries -d 'Retries of a failed registry request (connection errors, 408, 429, 5xx) [default: 5]' -r
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from prune" -l dry-run -d 'Say what would be removed, and remove nothing'
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from prune" -s q -l quiet -d 'Print only the result'
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from prune" -s v -l verbose -d 'Say more about what happens (repeatable)'
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from prune" -l json -d 'Print machine-readable JSON where the output is data'
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from prune" -s h -l help -d 'Print help'
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from info" -l insecure-registry -d 'Allow plain HTTP or unverified TLS for this registry host only (repeatable; loopback hosts need no flag for plain HTTP)' -r
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from info" -l timeout -d 'Give up on a registry that does not answer, or stops sending, for this many seconds [default: 60]' -r
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from info" -l connect-timeout -d 'Give up connecting to a registry after this many seconds [default: 30]' -r
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from info" -l retries -d 'Retries of a failed registry request (connection errors, 408, 429, 5xx) [default: 5]' -r
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from info" -s q -l quiet -d 'Print only the result'
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from info" -s v -l verbose -d 'Say more about what happens (repeatable)'
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from info" -l json -d 'Print machine-readable JSON where the output is data'
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from info" -s h -l help -d 'Print help'
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "prune" -d 'Remove least-recently-used blobs and the cache records naming them; never a blob a running build or export holds'
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "info" -d 'Show the store\'s size, its blob count and what each cache holds'
complete -c stowage -n "__fish_stowage_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c stowage -n "__fish_stowage_using_subcommand help; and not __fish_seen_subcommand_from build copy push sign verify archive login logout inspect init exports run-command cache help" -f -a "build" -d 'Build the image described by a stowage.toml and write it to each destination'
complete -c stowage -n "__fish_stowage_using_subcommand help; and not __fish_seen_subcommand_from build copy push sign verify archive login logout inspect init exports run-command cache help" -f -a "copy" -d 'Copy an image between any two transports, keeping its digest (an index keeps all platforms)'
complete -c stowage -n "__fish_stowage_using_subcommand help; and not __fish_seen_subcommand_from build copy push sign verify archive login logout inspect init exports run-command cache help" -f -a "push" -d 'Push an image to a registry: `copy` whose destination is a registry'
complete -c stowage -n "__fish_stowage_using_subcommand help; and not __fish_seen_subcommand_from build copy push sign verify archive login logout inspect init exports run-command cache help" -f -a "sign" -d 'Sign an image in a registry with a private key, in cosign\'s format (tag sha256-<hex>.sig)'
complete -c stowage -n "__fish_stowage_using_subcommand help; and not __fish_seen_subcommand_from build copy push sign verify archive login logout inspect init exports run-command cache help" -f -a "verify" -d 'Check an image\'s cosign signatures against a public key; fails when none verifies'
complete -c stowage -n "__fish_stowage_using_subcommand help; and not __fish_seen_subcommand_from build copy push sign verify archive login logout inspect init exports run-command cache help" -f -a "archive" -d 'Pull an image from a registry and write a docker-save tarball (.tar or .tar.gz)'
complete -c stowage -n "__fish_stowage_using_subcommand help; and not __fish_seen_subcommand_from build copy push sign verify archive login logout inspect init exports run-command cache help" -f -a "login" -d 'Check credentials against a registry and store them in Docker\'s config.json'
complete -c stowage -n "__fish_stowage_using_subcommand help; and not __fish_seen_subcommand_from build copy push sign verify archive login logout inspect init exports run-command cache help" -f -a "logout" -d 'Forget the stored credentials for a registry'
complete -c stowage -n "__fish_stowage_using_subcommand help; and not __fish_seen_subcommand_from build copy push sign verify archive login logout inspect init exports run-command cache help" -f -a "inspect" -d 'Show an image\'s summary, or its exact manifest or config bytes'
complete -c stowage -n "__fish_stowage_using_subcommand help; and not __fish_seen_subcommand_from build copy push sign verify archive login logout inspect init exports run-command cache help" -f -a "init" -d 'Write a commented starter stowage.toml'
complete -c stowage -n "__fish_stowage_using_subcommand help; and not __fish_seen_subcommand_from build copy push sign verify archive login logout inspect init exports run-command cache help" -f -a "exports" -d 'List past exports (builds, pushes, copies, archives), or delete one from where it went'
complete -c stowage -n "__fish_stowage_using_subcommand help; and not __fish_seen_subcommand_from build copy push sign verify archive login logout inspect init exports run-command cache help" -f -a "run-command" -d 'Print the `docker run` line that starts an export: REF (read now) or an export ID'
complete -c stowage -n "__fish_stowage_using_subcommand help; and not __fish_seen_subcommand_from build copy push sign verify archive login logout inspect init exports run-command cache help" -f -a "cache" -d 'Bound the blob store (prune), or show what it holds (info)'
complete -c stowage -n "__fish_stowage_using_subcommand help; and not __fish_seen_subcommand_from build copy push sign verify archive login logout inspect init exports run-command cache help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c stowage -n "__fish_stowage_using_subcommand help; and __fish_seen_subcommand_from exports" -f -a "list" -d 'List exports, oldest first (the default)'
complete -c stowage -n "__fish_stowage_using_subcommand help; and __fish_seen_subcommand_from exports" -f -a "delete" -d 'Delete what an export put in its registry, layout or archive file, and mark the record deleted'
complete -c stowage -n "__fish_stowage_using_subcommand help; and __fish_seen_subcommand_from cache" -f -a "prune" -d 'Remove least-recently-used blobs and the cache records naming them; never a blob a running build or export holds'
complete -c stowage -n "__fish_stowage_using_subcommand help; and __fish_seen_subcommand_from cache" -f -a "info" -d 'Show the store\'s size, its blob count and what each cache holds'
