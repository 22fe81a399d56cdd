package outbox

// Dir is the folder holding the records; "" when the outbox is in memory
// only. Other agent state that must survive a restart (the work orders in
// flight) lives in subfolders, which Open leaves alone.
func (o *Outbox) Dir() string { return o.dir }
