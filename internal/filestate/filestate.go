// Package filestate tells when a file read before has changed on disk, for
// what caddy-iap rereads without a reload: the upstream client key pair,
// the downstream CA and CRL files, a Kubernetes service-account token.
package filestate

import "os"

// Changed reports whether a file's state (os.Stat's, which follows
// symbolic links: a Kubernetes secret volume's ..data swap is a new file)
// differs from what was seen before: another file, another size or another
// modification time. A nil state is a file that could not be read. A
// rewrite in place to the same size within one tick of the file system's
// clock goes unseen until the next change; publishers write new files,
// whose size or time differ.
func Changed(before, now os.FileInfo) bool {
	if before == nil || now == nil {
		return before != now
	}
	return !os.SameFile(before, now) || before.Size() != now.Size() || !before.ModTime().Equal(now.ModTime())
}
