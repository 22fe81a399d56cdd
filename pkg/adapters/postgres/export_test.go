package postgres

// BeatFlushes is the number of heartbeat UPDATEs the store has run.
func BeatFlushes(s *Store) int64 { return s.beats.flushes.Load() }
