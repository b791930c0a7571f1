// Lists a tar as Go's archive/tar reads it, for stowage's tests to compare
// their own reading with: one line per entry, then "end" or "error <message>".
//
//	entry <name hex> <link hex> <type> <size> <mode> <uid> <gid> <data bytes> <data sha256>
//
// At most the first 16 MiB of an entry's data are read (a sparse test file can
// be 60 GB of holes). The tar comes on stdin, read through a plain io.Reader so the reader cannot
// seek past data it was not given (as when it reads a decompressed layer).
package main

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
)

func main() {
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	reader := tar.NewReader(struct{ io.Reader }{bufio.NewReader(os.Stdin)})
	for {
		header, err := reader.Next()
		if err == io.EOF {
			fmt.Fprintln(out, "end")
			return
		}
		if err != nil {
			fmt.Fprintln(out, "error", err)
			return
		}
		hash := sha256.New()
		n, err := io.CopyN(hash, reader, 16<<20)
		if err != nil && err != io.EOF {
			fmt.Fprintln(out, "error", err)
			return
		}
		fmt.Fprintf(out, "entry %x %x %d %d %d %d %d %d %x\n",
			header.Name, header.Linkname, header.Typeflag, header.Size,
			header.Mode, header.Uid, header.Gid, n, hash.Sum(nil))
	}
}
