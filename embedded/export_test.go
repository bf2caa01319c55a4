package embedded

// SetSyncFilesystem replaces the file-system sync of the staging recovery (staging.go) until
// the returned restore is called.
func SetSyncFilesystem(f func(path string) error) (restore func()) {
	old := syncFilesystem
	syncFilesystem = f
	return func() { syncFilesystem = old }
}
