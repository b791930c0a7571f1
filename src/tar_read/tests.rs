use super::*;

/// Every entry's header and data, or the first error.
fn read_all(bytes: &[u8]) -> Result<Vec<(TarHeader, Vec<u8>)>, io::Error> {
    let mut reader = TarReader::new(bytes);
    let mut found = Vec::new();
    while let Some(header) = reader.next_entry()? {
        let mut data = Vec::new();
        reader.read_to_end(&mut data)?;
        found.push((header, data));
    }
    Ok(found)
}

/// Every entry's name and data.
fn contents(bytes: &[u8]) -> io::Result<Vec<(String, Vec<u8>)>> {
    Ok(read_all(bytes)?
        .into_iter()
        .map(|(h, data)| (String::from_utf8_lossy(&h.name).into_owned(), data))
        .collect())
}

/// Every entry's name, skipping the data as a header-only reader does.
fn names(bytes: &[u8]) -> Result<Vec<String>, TarError> {
    let mut reader = TarReader::new(bytes);
    let mut found = Vec::new();
    while let Some(header) = reader.next_entry()? {
        found.push(String::from_utf8_lossy(&header.name).into_owned());
    }
    Ok(found)
}

/// A GNU header block for `name`, its fields set by `fill`, then sealed.
fn gnu_block(name: &str, type_flag: u8, size: u64, fill: impl FnOnce(&mut Block)) -> Block {
    let mut block = [0u8; BLOCK];
    block[..name.len()].copy_from_slice(name.as_bytes());
    block[100..107].copy_from_slice(b"0000644");
    block[108..115].copy_from_slice(b"0000000");
    block[116..123].copy_from_slice(b"0000000");
    block[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    block[136..147].copy_from_slice(b"00000000000");
    block[156] = type_flag;
    block[257..263].copy_from_slice(b"ustar ");
    block[263..265].copy_from_slice(b" \0");
    fill(&mut block);
    seal(&mut block);
    block
}

/// Writes the checksum of `block` into it.
fn seal(block: &mut Block) {
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|b| u32::from(*b)).sum();
    block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
}

/// `block`, then `data` padded to whole blocks.
fn member(out: &mut Vec<u8>, block: Block, data: &[u8]) {
    out.extend_from_slice(&block);
    out.extend_from_slice(data);
    out.resize(out.len() + block::padding(data.len() as u64) as usize, 0);
}

fn end(out: &mut Vec<u8>) {
    out.resize(out.len() + 2 * BLOCK, 0);
}

/// Appends a PAX header entry of `records`, as the tar crate writes one.
fn put_pax(out: &mut Vec<u8>, records: &[(&str, &str)]) {
    let mut builder = tar::Builder::new(Vec::new());
    let records = records.iter().map(|(k, v)| (*k, v.as_bytes()));
    builder.append_pax_extensions(records).unwrap();
    out.extend_from_slice(builder.get_ref());
}

/// A tar of `files` as `tar::Builder` writes it, with the two end blocks.
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

const FILES: [(&str, &[u8]); 2] = [("a.txt", b"hello"), ("b.txt", b"world, 13 byt")];

#[test]
fn a_whole_tar_reads() {
    let bytes = tar_of(&FILES);
    let read = contents(&bytes).unwrap();
    assert_eq!(read[1], ("b.txt".into(), b"world, 13 byt".to_vec()));
    assert_eq!(names(&bytes).unwrap(), ["a.txt", "b.txt"]);
}

#[test]
fn a_tar_ending_at_an_entry_boundary_or_after_one_zero_block_reads() {
    let bytes = tar_of(&FILES);
    for cut in [&bytes[..bytes.len() - 1024], &bytes[..bytes.len() - 512]] {
        assert_eq!(contents(cut).unwrap().len(), 2);
        assert_eq!(names(cut).unwrap(), ["a.txt", "b.txt"]);
    }
}

#[test]
fn a_tar_ending_inside_the_last_padding_reads() {
    let bytes = tar_of(&FILES);
    // Header of a.txt, its block, header of b.txt, then b.txt's 13 bytes.
    let data_end = 512 * 3 + 13;
    for end in [data_end, data_end + 1, data_end + 200, 512 * 4 - 1] {
        let cut = &bytes[..end];
        assert_eq!(contents(cut).unwrap().len(), 2, "cut at {end}");
        assert_eq!(names(cut).unwrap(), ["a.txt", "b.txt"], "cut at {end}");
    }
}

#[test]
fn a_tar_whose_last_data_is_cut_short_is_refused() {
    let bytes = tar_of(&FILES);
    for end in [512 * 3 + 1, 512 * 3 + 12] {
        let cut = &bytes[..end];
        let error = contents(cut).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "cut at {end}");
        assert!(names(cut).is_err(), "headers only, cut at {end}");
    }
}

#[test]
fn a_tar_cut_inside_an_earlier_entry_or_a_header_is_refused() {
    let big = vec![7u8; 2000];
    let bytes = tar_of(&[("big", &big), ("small", b"x")]);
    for end in [1024, 1100] {
        assert!(contents(&bytes[..end]).is_err(), "cut at {end}");
        assert!(names(&bytes[..end]).is_err(), "cut at {end}");
    }
    let header_start = 512 + 2048;
    for end in [header_start + 1, header_start + 300] {
        assert!(contents(&bytes[..end]).is_err(), "cut at {end}");
        assert!(matches!(names(&bytes[..end]), Err(TarError::EndsInHeader)));
    }
}

#[test]
fn an_empty_stream_is_an_empty_tar() {
    assert!(read_all(&[]).unwrap().is_empty());
}

#[test]
fn a_zero_block_followed_by_a_header_is_refused() {
    let bytes = tar_of(&FILES);
    let mut spliced = bytes[..1024].to_vec();
    spliced.extend_from_slice(&[0; BLOCK]);
    spliced.extend_from_slice(&bytes[1024..]);
    assert!(matches!(
        names(&spliced),
        Err(TarError::ZeroBlockThenHeader)
    ));
}

#[test]
fn the_last_of_several_long_names_and_long_links_wins() {
    let mut bytes = Vec::new();
    for (flag, text) in [
        (b'L', "first/name"),
        (b'L', "second/name"),
        (b'K', "one"),
        (b'K', "two"),
    ] {
        let data = format!("{text}\0");
        member(
            &mut bytes,
            gnu_block("././@LongLink", flag, data.len() as u64, |_| {}),
            data.as_bytes(),
        );
    }
    member(
        &mut bytes,
        gnu_block("short", b'2', 0, |b| b[157..160].copy_from_slice(b"abc")),
        b"",
    );
    end(&mut bytes);
    let read = read_all(&bytes).unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].0.name, b"second/name");
    assert_eq!(read[0].0.link_name, b"two");
    assert!(read[0].0.is_symlink());
}

#[test]
fn the_last_of_several_pax_headers_wins_whole_and_a_long_name_beats_its_path() {
    let mut bytes = Vec::new();
    let first = [("path", "from/first"), ("uid", "7"), ("size", "3")];
    put_pax(&mut bytes, &first);
    put_pax(&mut bytes, &[("path", "from/second"), ("gid", "9")]);
    member(&mut bytes, gnu_block("raw", b'0', 5, |_| {}), b"12345");
    // A long name and a PAX path for one member: the long name wins.
    put_pax(&mut bytes, &first);
    member(
        &mut bytes,
        gnu_block("././@LongLink", b'L', 9, |_| {}),
        b"long/name",
    );
    member(&mut bytes, gnu_block("raw2", b'0', 3, |_| {}), b"abc");
    end(&mut bytes);
    let read = read_all(&bytes).unwrap();
    assert_eq!(read[0].0.name, b"from/second");
    assert_eq!((read[0].0.uid, read[0].0.gid), (0, 9));
    assert_eq!(read[0].1, b"12345");
    assert_eq!(read[1].0.name, b"long/name");
    assert_eq!((read[1].0.uid, read[1].0.size), (7, 3));
}

#[test]
fn bad_pax_records_and_oversized_headers_are_refused() {
    for data in [
        &b"8 path=x\n"[..],
        b"10 path=a\0\n",
        b"13 mtime=1.x\n",
        b"10 uid=-z\n",
    ] {
        let mut bytes = Vec::new();
        member(
            &mut bytes,
            gnu_block("h", b'x', data.len() as u64, |_| {}),
            data,
        );
        member(&mut bytes, gnu_block("f", b'0', 0, |_| {}), b"");
        assert!(names(&bytes).is_err(), "{}", String::from_utf8_lossy(data));
    }
    let mut bytes = Vec::new();
    let huge = vec![b'a'; (MAX_SPECIAL_BYTES + 1) as usize];
    member(
        &mut bytes,
        gnu_block("h", b'L', huge.len() as u64, |_| {}),
        &huge,
    );
    assert!(matches!(
        names(&bytes),
        Err(TarError::SpecialTooLong { .. })
    ));
}

/// The logical content of a sparse file of `size` bytes with `fragments` of
/// data, each fragment's bytes counting up from its offset.
fn sparse_content(size: usize, fragments: &[(usize, usize)]) -> (Vec<u8>, Vec<u8>) {
    let mut logical = vec![0u8; size];
    let mut stored = Vec::new();
    for (offset, length) in fragments {
        for (i, byte) in logical.iter_mut().enumerate().skip(*offset).take(*length) {
            *byte = (i % 251) as u8 + 1;
            stored.push(*byte);
        }
    }
    (logical, stored)
}

/// Unaligned fragments, a hole at the start and at the end.
const FRAGMENTS: [(usize, usize); 3] = [(3, 5), (700, 1000), (5000, 1)];
const SPARSE_SIZE: usize = 9000;

fn octal12(value: usize) -> [u8; 12] {
    let mut field = [0u8; 12];
    field[..11].copy_from_slice(format!("{value:011o}").as_bytes());
    field
}

#[test]
fn old_gnu_sparse_files_with_unaligned_fragments_and_extension_blocks_read() {
    let (logical, stored) = sparse_content(SPARSE_SIZE, &FRAGMENTS);
    // Two entries in the header, the third in an extension block.
    let header = gnu_block("sparse", b'S', stored.len() as u64, |b| {
        for (i, (offset, length)) in FRAGMENTS[..2].iter().enumerate() {
            b[386 + i * 24..398 + i * 24].copy_from_slice(&octal12(*offset));
            b[398 + i * 24..410 + i * 24].copy_from_slice(&octal12(*length));
        }
        b[482] = 1;
        b[483..495].copy_from_slice(&octal12(SPARSE_SIZE));
    });
    let mut extension = [0u8; BLOCK];
    extension[..12].copy_from_slice(&octal12(FRAGMENTS[2].0));
    extension[12..24].copy_from_slice(&octal12(FRAGMENTS[2].1));
    let mut bytes = header.to_vec();
    member(&mut bytes, extension, &stored);
    member(&mut bytes, gnu_block("after", b'0', 2, |_| {}), b"ok");
    end(&mut bytes);
    let read = read_all(&bytes).unwrap();
    assert_eq!(read[0].0.size, SPARSE_SIZE as i64);
    assert!(read[0].0.is_file());
    assert_eq!(read[0].1, logical);
    assert_eq!(read[1].1, b"ok");
    assert_eq!(names(&bytes).unwrap(), ["sparse", "after"]);
}

#[test]
fn pax_sparse_files_of_every_version_read() {
    let (logical, stored) = sparse_content(SPARSE_SIZE, &FRAGMENTS);
    let map: Vec<String> = FRAGMENTS
        .iter()
        .flat_map(|(o, l)| [o.to_string(), l.to_string()])
        .collect();
    let size = SPARSE_SIZE.to_string();
    let mut v00 = vec![
        ("GNU.sparse.size", size.as_str()),
        ("GNU.sparse.numblocks", "3"),
    ];
    for pair in map.chunks(2) {
        v00.push(("GNU.sparse.offset", &pair[0]));
        v00.push(("GNU.sparse.numbytes", &pair[1]));
    }
    let joined = map.join(",");
    let v01 = vec![
        ("GNU.sparse.size", size.as_str()),
        ("GNU.sparse.numblocks", "3"),
        ("GNU.sparse.map", &joined),
        ("GNU.sparse.name", "real/name"),
    ];
    let v10 = vec![
        ("GNU.sparse.major", "1"),
        ("GNU.sparse.minor", "0"),
        ("GNU.sparse.realsize", size.as_str()),
        ("GNU.sparse.name", "real/name"),
    ];
    let mut map_block = format!("3\n{}\n", map.join("\n")).into_bytes();
    map_block.resize(BLOCK, 0);
    for (records, data_prefix) in [(v00, vec![]), (v01, vec![]), (v10, map_block)] {
        let mut data = data_prefix;
        data.extend_from_slice(&stored);
        let mut bytes = Vec::new();
        put_pax(&mut bytes, &records);
        member(
            &mut bytes,
            gnu_block("GNUSparseFile.0/name", b'0', data.len() as u64, |_| {}),
            &data,
        );
        end(&mut bytes);
        let read = read_all(&bytes).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].1, logical);
        assert_eq!(read[0].0.size, SPARSE_SIZE as i64);
        if read[0].0.name != b"GNUSparseFile.0/name" {
            assert_eq!(read[0].0.name, b"real/name");
        }
    }
}

fn sparse_pax_tar(map: &str, numblocks: &str, stored: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    put_pax(
        &mut bytes,
        &[
            ("GNU.sparse.size", "100"),
            ("GNU.sparse.numblocks", numblocks),
            ("GNU.sparse.map", map),
        ],
    );
    member(
        &mut bytes,
        gnu_block("s", b'0', stored.len() as u64, |_| {}),
        stored,
    );
    end(&mut bytes);
    bytes
}

#[test]
fn bad_sparse_maps_and_data_that_does_not_match_them_are_refused() {
    // Overlapping, out of order, past the end, negative, odd count.
    for (map, count) in [
        ("0,10,5,10", "2"),
        ("50,1,10,1", "2"),
        ("95,10", "1"),
        ("-1,3", "1"),
        ("1,2,3", "2"),
    ] {
        assert!(
            matches!(
                names(&sparse_pax_tar(map, count, b"")),
                Err(TarError::SparseMap)
            ),
            "{map}"
        );
    }
    let error = contents(&sparse_pax_tar("10,5", "1", b"abc")).unwrap_err();
    assert!(error.to_string().contains("does not carry"), "{error}");
    let error = contents(&sparse_pax_tar("10,5", "1", b"abcdefg")).unwrap_err();
    assert!(error.to_string().contains("does not reference"), "{error}");
    // Headers alone do not read the data, so they do not see either (as in Go).
    assert_eq!(
        names(&sparse_pax_tar("10,5", "1", b"abcdefg")).unwrap(),
        ["s"]
    );
}

#[test]
fn a_gnu_dump_folder_reads_with_its_listing_and_an_empty_sparse_file_with_a_big_size() {
    let mut bytes = Vec::new();
    let listing = b"Yfoo\0Ysparse\0\0";
    member(
        &mut bytes,
        gnu_block("test2/", b'D', listing.len() as u64, |_| {}),
        listing,
    );
    // 512 MiB of holes and a zero-length fragment at the end: no data stored.
    let big = 1usize << 29;
    let sparse = gnu_block("test2/sparse", b'S', 0, |b| {
        b[386..398].copy_from_slice(&octal12(big));
        b[398..410].copy_from_slice(&octal12(0));
        b[483..495].copy_from_slice(&octal12(big));
    });
    member(&mut bytes, sparse, b"");
    end(&mut bytes);
    let mut reader = TarReader::new(&bytes[..]);
    let dump = reader.next_entry().unwrap().unwrap();
    assert!(dump.is_dir());
    let mut data = Vec::new();
    reader.read_to_end(&mut data).unwrap();
    assert_eq!(data, listing);
    let sparse = reader.next_entry().unwrap().unwrap();
    assert_eq!((sparse.type_flag, sparse.size), (b'S', big as i64));
    let mut head = Vec::new();
    (&mut reader).take(4096).read_to_end(&mut head).unwrap();
    assert_eq!(head, vec![0; 4096]);
    assert!(reader.next_entry().unwrap().is_none());
}

#[test]
fn numbers_read_as_go_reads_them() {
    assert_eq!(block::number(b"\0\0\0\0\0\0\0\0", "f").unwrap(), 0);
    assert_eq!(block::number(b"        ", "f").unwrap(), 0);
    assert_eq!(block::number(b" 0000755\0", "f").unwrap(), 0o755);
    assert_eq!(block::number(b"12\x0034", "f").unwrap(), 0o12);
    assert_eq!(
        block::number(&[0x80, 0, 0, 0, 0, 0, 1, 0], "f").unwrap(),
        256
    );
    assert_eq!(block::number(&[0xff; 8], "f").unwrap(), -1);
    assert!(block::number(b"+0000755", "f").is_err());
    assert!(block::number(b"0000855", "f").is_err());
    assert!(block::number(&[0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0], "f").is_err());
}

#[test]
fn a_type_nul_entry_ending_in_a_slash_is_a_folder() {
    let mut bytes = Vec::new();
    member(&mut bytes, gnu_block("dir/", 0, 0, |_| {}), b"");
    member(&mut bytes, gnu_block("file", 0, 1, |_| {}), b"x");
    let read = read_all(&bytes).unwrap();
    assert_eq!((read[0].0.type_flag, read[1].0.type_flag), (b'5', b'0'));
}

/// Go's own test archives (fixtures/go-tar, from Go's src/archive/tar/testdata)
/// with what Go's reader_test.go expects of them.
#[test]
fn gos_test_archives_read_as_gos_tests_expect() {
    let fixture = |name: &str| {
        std::fs::read(format!(
            "{}/fixtures/go-tar/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let incremental = read_all(&fixture("gnu-incremental.tar")).unwrap();
    let summary: Vec<_> = incremental
        .iter()
        .map(|(h, data)| {
            (
                String::from_utf8_lossy(&h.name).into_owned(),
                h.type_flag,
                h.size,
                data.len(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("test2/".to_string(), b'D', 14, 14),
            ("test2/foo".to_string(), b'0', 64, 64),
            ("test2/sparse".to_string(), b'S', 536870912, 536870912),
        ]
    );
    let multi = read_all(&fixture("pax-multi-hdrs.tar")).unwrap();
    assert_eq!(
        (multi[0].0.name.as_slice(), multi[0].0.link_name.as_slice()),
        (&b"bar"[..], &b"PAX4/PAX4/long-linkpath-name"[..])
    );
    let gnu_multi = read_all(&fixture("gnu-multi-hdrs.tar")).unwrap();
    assert_eq!(gnu_multi[0].0.name, b"GNU2/GNU2/long-path-name");
    assert_eq!(gnu_multi[0].0.link_name, b"GNU4/GNU4/long-linkpath-name");
    let formats = read_all(&fixture("sparse-formats.tar")).unwrap();
    let names: Vec<_> = formats
        .iter()
        .map(|(h, _)| String::from_utf8_lossy(&h.name).into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "sparse-gnu",
            "sparse-posix-0.0",
            "sparse-posix-0.1",
            "sparse-posix-1.0",
            "end"
        ]
    );
    for (header, data) in &formats[..4] {
        assert_eq!((header.size, data.len()), (200, 200));
        assert_eq!(data, &formats[0].1);
    }
    for rejected in [
        "neg-size.tar",
        "issue10968.tar",
        "issue11169.tar",
        "issue12435.tar",
        "pax-bad-hdr-file.tar",
        "pax-bad-mtime-file.tar",
        "pax-nul-path.tar",
        "pax-nul-xattrs.tar",
        "writer-big.tar",
        "writer-big-long.tar",
    ] {
        assert!(read_all(&fixture(rejected)).is_err(), "{rejected}");
    }
}

#[test]
fn what_starts_like_a_tar() {
    let v7 = {
        let mut block = gnu_block("file", b'0', 0, |b| b[257..265].fill(0));
        seal(&mut block);
        block
    };
    assert!(starts_like_a_tar(&v7));
    assert!(starts_like_a_tar(&tar_of(&FILES)[..512]));
    assert!(starts_like_a_tar(&[0; 1024][..512]));
    assert!(starts_like_a_tar(b""));
    let mut damaged = v7;
    damaged[0] ^= 1;
    assert!(!starts_like_a_tar(&damaged));
    assert!(!starts_like_a_tar(b"{\"config\": 1}"));
    assert!(!starts_like_a_tar(&[0; 100]));
}

#[test]
fn a_pax_1_0_sparse_map_over_1_mib_is_refused_as_go_refuses_it() {
    let mut map = b"1\n".to_vec();
    map.resize((1 << 20) + BLOCK, b'0');
    map.extend_from_slice(b"\n0\n");
    map.resize(map.len().div_ceil(BLOCK) * BLOCK, 0);
    let mut bytes = Vec::new();
    put_pax(
        &mut bytes,
        &[
            ("GNU.sparse.major", "1"),
            ("GNU.sparse.minor", "0"),
            ("GNU.sparse.realsize", "0"),
        ],
    );
    member(
        &mut bytes,
        gnu_block("s", b'0', map.len() as u64, |_| {}),
        &map,
    );
    assert!(matches!(names(&bytes), Err(TarError::SparseMapTooLong)));
}
