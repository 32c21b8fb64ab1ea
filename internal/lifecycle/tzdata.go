package lifecycle

// The time zone database is embedded (about 450 kB): lifecycle.time_zone
// names an IANA zone, and the binary must load it on minimal images
// (distroless, scratch, a Debian slim without tzdata) as well as on a
// full system, where the system's database is used first.
import _ "time/tzdata"
