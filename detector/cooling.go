package detector

import (
	"fmt"
	"math"
	"time"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// coolState is the CoolingFailure part of a string or UPS: a slowly learned
// normal temperature (the string's median cell temperature, the UPS's
// ambient), how far the latest reading is above it, and the alerts.
type coolState struct {
	base    float64
	n       uint32
	lastUpd int64
	// learned is how long the normal has been learning (frozen time does
	// not count).
	learned int64
	// vr is the learned variance of the readings about the normal: how
	// far this room or string strays from its normal on an ordinary day
	// (the daily swing, HVAC cycling).
	vr    float64
	rise  float64
	known bool
	warn  [2]alertState // warning, critical
	// quietUntil: a string stays silent while its room recovers from a
	// room-wide failure (its cells lag the air).
	quietUntil int64
	// firedAt is when the alert started firing (0: not firing).
	firedAt int64
	// adoptUntil: a string adopts its room's lasting change quickly until
	// then.
	adoptUntil int64
}

// youngTau is the shortest time constant of a young normal.
const youngTau = 2 * int64(time.Hour)

// learn updates the normal level with a new reading at t unless frozen.
// The normal is an exponentially weighted mean with time constant tau. A
// young normal, which has learned for less than tau, learns faster: the
// plain mean of its readings for the first warmup updates, then an
// exponential mean over youngTau (2 h) that lengthens into the plain mean
// of everything learned, until that is slower than tau. It does not stay
// where the first readings happened to fall (a room first seen at the low
// of a wide daily swing would otherwise page at the swing's high that
// afternoon), yet a failure in its first hour still stands out against it.
// The variance about the normal is learned alongside, always over
// spreadTau (a lasting change adopted within adoptTau is not ordinary
// variation), from readings that rise less than ordinary (the alert's
// current limit): the failure it should report must not teach it that
// failures are normal.
func (c *coolState) learn(v float64, t, tau, spreadTau int64, warmup uint32, ordinary float64, frozen bool) {
	if !c.known {
		c.base, c.known, c.lastUpd, c.n = v, true, t, 1
		return
	}
	c.rise = v - c.base
	dt := max(0, t-c.lastUpd)
	c.lastUpd = t
	// An alert holds the normal still, but not for ever: after maxFreeze
	// a lasting change (a new HVAC setpoint) becomes the new normal, which
	// is then adopted within about adoptTau.
	lasting := c.firing() && c.firedAt != 0 && t-c.firedAt >= maxFreeze
	if frozen && !lasting {
		return
	}
	if lasting {
		tau = adoptTau
	}
	c.n++
	c.learned += dt
	weight := func(tau int64) float64 {
		w := min(1, float64(dt)/float64(tau))
		switch {
		case c.n <= warmup:
			return max(w, 1/float64(c.n))
		case c.learned < tau:
			return max(w, min(1, float64(dt)/float64(youngTau)))
		}
		return w
	}
	if c.rise < ordinary {
		c.vr += weight(spreadTau) * (c.rise*c.rise - c.vr)
	}
	c.base += weight(tau) * (v - c.base)
}

// limit is the rise at which the alert fires: the configured rise, or
// factor times the learned spread when that is more, so that a room whose
// ordinary daily swing is wide does not page at every afternoon high.
func (c *coolState) limit(rise, factor float64) float64 {
	return max(rise, factor*math.Sqrt(c.vr))
}

func (c *coolState) firing() bool { return c.warn[0].firing() || c.warn[1].firing() }

// ambientFresh is how old the ambient's last reading may be for a
// string's own warming to be judged against it.
const ambientFresh = 15 * time.Minute

// maxFreeze is how long a firing CoolingFailure keeps its normal frozen;
// adoptTau is the time constant with which a lasting change is adopted
// after that.
const (
	maxFreeze = 12 * int64(time.Hour)
	adoptTau  = int64(time.Hour)
)

// track records when the alert started firing; call after each step.
func (c *coolState) track(t int64) {
	switch {
	case !c.firing():
		c.firedAt = 0
	case c.firedAt == 0:
		c.firedAt = t
	}
}

// climbState follows how fast a temperature climbs: its readings sampled
// over CoolingFailure's fast window, their Theil-Sen slope (°C/h) and how
// far the line's end stands above the lowest point of the window.
type climbState struct {
	ring  slopeRing
	slope float64
	climb float64
	jump  float64 // the largest rise from one point to the next within the window
	span  float64 // hours the points span
	n     int     // points within the window
	// The slopes over the older and the newer half of the window.
	early, late float64
}

// push samples v at t and updates the slope and the climb.
func (c *climbState) push(t int64, v float64, window int64) {
	if !c.ring.push(t, v, window) {
		return
	}
	c.slope, c.span = c.ring.theilSen(t-window, t)
	low, prev := math.Inf(1), math.NaN()
	c.jump, c.n = 0, 0
	for n := c.ring.n - min(c.ring.n, ringSize); n < c.ring.n; n++ { // oldest first
		a := n % ringSize
		if c.ring.time(int(a)) < t-window {
			continue
		}
		c.n++
		v := float64(c.ring.v[a])
		low = min(low, v)
		if !math.IsNaN(prev) {
			c.jump = max(c.jump, v-prev)
		}
		prev = v
	}
	c.climb = c.ring.lineEnd(t-window, t, c.slope) - low
	c.early, _ = c.ring.theilSen(t-window, t-window/2)
	c.late, _ = c.ring.theilSen(t-window/2, t)
}

// steady reports whether the climb is spread over the window rather than
// made by one jump (a setpoint step, a sensor moved): no single step
// between points carries half of it.
func (c *climbState) steady() bool { return c.jump < 0.5*c.climb }

// upsState is a UPS's ambient and its strings.
type upsState struct {
	id    telemetry.EntityID
	amb   coolState
	climb climbState // of the ambient
	// climbLong: the same over fast_strings_window, which an HVAC cycle
	// averages out (roomGoesOn).
	climbLong climbState
	groups    []uint32 // indices into Engine.groups
}

// upsOf returns 1 + the index of a UPS's state.
func (e *Engine) upsOf(id telemetry.EntityID) uint32 {
	ust := e.state(id)
	if ust.aux == 0 {
		e.upss = append(e.upss, upsState{id: id})
		ust.aux = uint32(len(e.upss))
	}
	return ust.aux
}

// coolingFiring reports whether a CoolingFailure covers the string, so the
// temperature alerts under it are inhibited.
func (e *Engine) coolingFiring(g *group) bool {
	return g.cool.firing() || e.upss[g.ups-1].amb.firing()
}

// observeAmbient learns a UPS's room temperature and re-evaluates the
// room.
func (e *Engine) observeAmbient(s telemetry.Sample, out []Change) []Change {
	if impossibleCelsius(s.Value, &e.cfg.Plausible) {
		e.stats.Implausible++
		return out
	}
	u := &e.upss[e.upsOf(s.Entity)-1]
	cc := &e.cfg.CoolingFailure
	u.amb.learn(s.Value, s.Time, cc.Learning.Nanos(), cc.Learning.Nanos(), uint32(e.cfg.Peers.WarmupPolls),
		u.amb.limit(cc.WarningRise, cc.SpreadFactor), u.amb.firing())
	u.climb.push(s.Time, s.Value, cc.FastWindow.Nanos())
	u.climbLong.push(s.Time, s.Value, cc.FastStringsWindow.Nanos())
	return e.upsCooling(u, s.Time, out)
}

// observeCurrent notes when a string carries load.
func (e *Engine) observeCurrent(s telemetry.Sample) {
	g := e.groupOf(s.Entity)
	g.curAt, g.curSeen = s.Time, true
	if math.Abs(s.Value) > e.cfg.Peers.ActiveCurrentAmperes {
		g.lastActive, g.loaded = s.Time, true
		if s.Value < 0 {
			g.lastDischarge = s.Time
		}
	}
}

// stringCooling learns a string's normal median temperature, decides
// whether it is warming (outside load), and evaluates its UPS's room; a
// string warms on its own (a cabinet fan) only when its UPS's room does not.
func (e *Engine) stringCooling(g *group, medT float64, t, _ int64, load bool, out []Change) []Change {
	cc := &e.cfg.CoolingFailure
	// The room's alert holds the string's normal too, within the same
	// bound: a lasting change of the room becomes the string's normal.
	u0 := &e.upss[g.ups-1]
	roomHold := u0.amb.firing() && t-u0.amb.firedAt < maxFreeze
	tau := cc.Learning.Nanos()
	if u0.amb.firing() && !roomHold {
		// The room's change is lasting: the string adopts it with the
		// room, and for a while after (its cells lag the air).
		g.cool.adoptUntil = t + 3*int64(time.Hour)
	}
	adopting := t < g.cool.adoptUntil
	if adopting {
		tau = adoptTau
	}
	frozen := load || g.cool.firing() || roomHold || (t < g.cool.quietUntil && !u0.amb.firing() && !adopting)
	if load && !g.coolLoad {
		g.preLoadRise = g.cool.rise // its rise before the load, against the normal the load holds still
	}
	g.coolLoad = load
	g.cool.learn(medT, t, tau, cc.Learning.Nanos(), uint32(e.cfg.Peers.WarmupPolls), g.cool.limit(cc.WarningRise, cc.SpreadFactor), frozen)
	if !load {
		g.climb.push(t, medT, cc.FastWindow.Nanos())
		g.climbLong.push(t, medT, cc.FastStringsWindow.Nanos())
	}
	u := &e.upss[g.ups-1]
	out = e.upsCooling(u, t, out)
	if u.amb.firing() {
		g.cool.quietUntil = t + 2*int64(time.Hour)
	}
	if !cc.Enabled || u.amb.firing() {
		return out
	}
	warming := g.cool.known && g.cool.n > uint32(e.cfg.Peers.WarmupPolls) && !load && t >= g.cool.quietUntil
	// What the string has warmed on its own: beyond its room's warming,
	// when the room has an ambient sensor. A string's normal stands still
	// while it carries load and cools down after, while the room's goes on
	// learning: in a room with a wide daily swing the string would
	// otherwise find itself far above a normal learned hours before.
	// A setpoint change moves the room, which a fresh ambient takes out
	// of the string's own rise; without one the string's own warning needs
	// it to go on warming, as the room's does.
	own, relative := g.cool.rise, false
	if u.amb.known && u.amb.n > uint32(e.cfg.Peers.WarmupPolls) && t-u.amb.lastUpd <= int64(ambientFresh) {
		own -= max(0, u.amb.rise)
		relative = true
	}
	for i, limit := range [2]float64{cc.WarningRise, cc.CriticalRise} {
		reach := g.cool.limit(limit, cc.SpreadFactor)
		active := warming && own >= reach && (i > 0 || relative || own >= cc.LevelSettled*reach || e.stringGoesOn(g)) &&
			!e.roomWarming(u) && !e.roomClimbing(u) && !e.stringsClimbing(u)
		if g.cool.warn[i].firing() {
			active = own >= 0.6*limit
		}
		sev := SeverityWarning + Severity(i)
		out = e.emit(out, g.cool.warn[i].step(t, active, &cc.Hold), t, AlertCoolingFailure, sev, g.id, g.cool.rise,
			func() string {
				return fmt.Sprintf("string %s is %s °C warmer than its normal %s °C while idle: its cooling has failed",
					e.path(g.id), fmtDelta(g.cool.rise), fmtDelta(g.cool.base))
			})
	}
	g.cool.track(t)
	return out
}

// roomWarming reports whether a UPS's room is warming: its ambient, when it
// has one, or at least half of its strings.
func (e *Engine) roomWarming(u *upsState) bool {
	cc := &e.cfg.CoolingFailure
	warming, following, n := 0, 0, 0
	for _, gi := range u.groups {
		g := &e.groups[gi]
		if !e.coolingUsable(g) {
			continue
		}
		n++
		if g.cool.rise >= g.cool.limit(cc.WarningRise, cc.SpreadFactor)/2 {
			warming++
		}
		if g.cool.rise >= cc.WarningRise/10 {
			following++
		}
	}
	if u.amb.known && u.amb.n > uint32(e.cfg.Peers.WarmupPolls) {
		// The air leads and the cells lag it by their thermal time
		// constant: the ambient carries the evidence, the strings only
		// have to have started following it.
		return u.amb.rise >= u.amb.limit(cc.WarningRise, cc.SpreadFactor) && (n == 0 || 2*following >= n)
	}
	return n >= 2 && 2*warming >= n && e.stringsRise(u) >= e.stringsLimit(u, cc.WarningRise)
}

// roomClimbing is the early evidence of a failed air conditioner, which
// raises the warning before the ambient is warning_rise_celsius above
// normal: the ambient climbing steadily (its Theil-Sen slope over
// fast_window at least fast_celsius_per_hour), by at least
// fast_rise_celsius within the window and half that above normal, and the
// cells of at least half the UPS's usable strings following it (their
// median up by fast_follow_celsius, and two quanta, within the window).
// A room left without cooling heats at tens of °C per hour; the daily
// swing moves it by a fraction of a degree per hour, HVAC cycling averages
// out over the window, and a setpoint step gives a steep slope only while
// the step sits in the middle of the window. The climb is measured within
// the window, not against the learned normal, which a failure starting
// at the low of the daily swing would otherwise have to make up first; it
// must still be above normal, so a room recovering from a low is not
// failing. The cells must follow, so a faulty or sun-lit ambient sensor
// alone does not page.
func (e *Engine) roomClimbing(u *upsState) bool {
	cc := &e.cfg.CoolingFailure
	win := time.Duration(cc.FastWindow).Hours()
	if cc.FastRise <= 0 || !u.amb.known || u.amb.n <= uint32(e.cfg.Peers.WarmupPolls) ||
		u.climb.span < 0.5*win || u.climb.slope < cc.FastCelsiusPerHour ||
		u.climb.climb < cc.FastRise || !u.climb.steady() || u.amb.rise < cc.FastRise/2 {
		return false
	}
	following, n := e.usableStrings(u, func(g *group) bool {
		return g.climb.span >= 0.5*win && g.climb.climb >= max(cc.FastFollow, 2*g.quantT)
	})
	return n > 0 && 2*following >= n
}

// stringsClimbing is the early evidence of a failed air conditioner for a
// UPS without an ambient sensor: at least two usable strings, and at least
// half of them with their median cell temperature climbing by
// fast_strings_rise_celsius (and two quanta) within fast_strings_window,
// half that above normal, and faster over the newer half of the window
// than over the older. The cells lag the air by their thermal time
// constant, so they climb more slowly than the air and the window is
// longer. The climb must still be speeding up: cells warming towards a
// room that keeps heating climb faster and faster for the first half hour,
// while cells settling to a new setpoint climb fastest at first and then
// slow down.
func (e *Engine) stringsClimbing(u *upsState) bool {
	cc := &e.cfg.CoolingFailure
	if cc.FastStringsRise <= 0 || u.amb.known {
		return false
	}
	win := time.Duration(cc.FastStringsWindow).Hours()
	climbing, n := e.usableStrings(u, func(g *group) bool {
		c := &g.climbLong
		return c.span >= 0.75*win && c.climb >= max(cc.FastStringsRise, 2*g.quantT) && c.late > c.early && c.late > 0 &&
			g.cool.rise >= cc.FastStringsRise/2
	})
	return n >= 2 && 2*climbing >= n
}

// roomGoesOn reports whether a room whose rise has reached the warning's
// limit reach is still heating, as a room whose cooling failed does until
// it is far above its normal, rather than settled at a new level, as after
// a setpoint change: its ambient climbed by level_climb_celsius within
// fast_strings_window, steadily (no single step carrying half of it) when
// at least steadyPoints of its samples fall in the window (an ambient read
// every 15 min has two or three, and a failure's climb comes in steps
// then), or, without an ambient sensor, at least half of its usable
// strings did (stringGoesOn). A rise of level_settled_factor times the
// limit needs no climb, and neither does an ambient whose samples span
// less than half the window (nothing to tell a setpoint change by).
func (e *Engine) roomGoesOn(u *upsState, rise, reach float64) bool {
	cc := &e.cfg.CoolingFailure
	if cc.LevelClimb <= 0 || rise >= cc.LevelSettled*reach {
		return true
	}
	if u.amb.known {
		c := &u.climbLong
		if c.span < 0.5*time.Duration(cc.FastStringsWindow).Hours() {
			return true
		}
		if c.n < steadyPoints {
			// Too few samples for steadiness: the climb without its
			// largest step must do (a step climbs in one).
			return c.climb-c.jump >= cc.LevelClimb
		}
		return c.steady() && c.climb >= cc.LevelClimb
	}
	going, n := e.usableStrings(u, e.stringGoesOn)
	return n > 0 && 2*going >= n
}

// steadyPoints is how many samples within a window the steadiness of a
// climb needs.
const steadyPoints = 4

// stringGoesOn reports whether a string's median cell temperature climbed
// by level_climb_celsius (and two quanta) within fast_strings_window: its
// cells still follow a room (or cabinet) that keeps heating. Its samples
// are not taken under load, so in the window after its load cooldown they
// span too little; then its rise must have grown twice that since before
// the load: its room or cabinet may have failed while it carried load (a
// power cut stops the air conditioners), while a setpoint changed before
// the load had already raised it.
func (e *Engine) stringGoesOn(g *group) bool {
	cc := &e.cfg.CoolingFailure
	if cc.LevelClimb <= 0 {
		return true
	}
	c, climb := &g.climbLong, max(cc.LevelClimb, 2*g.quantT)
	if c.span < 0.5*time.Duration(cc.FastStringsWindow).Hours() {
		// Twice the climb: when its cooldown ends a string still holds
		// an eighth of the load's own heat (1.35 °C of 10 °C).
		return g.cool.rise-g.preLoadRise >= 2*climb
	}
	return c.climb >= climb
}

// usableStrings counts a UPS's strings that tell about its room
// (coolingUsable), and how many of them show what show reports.
func (e *Engine) usableStrings(u *upsState, show func(g *group) bool) (showing, usable int) {
	for _, gi := range u.groups {
		g := &e.groups[gi]
		if !e.coolingUsable(g) {
			continue
		}
		usable++
		if show(g) {
			showing++
		}
	}
	return showing, usable
}

// coolingUsable says whether a string's temperature tells about its room:
// learned, and neither under load nor cooling down from it.
func (e *Engine) coolingUsable(g *group) bool {
	return g.cool.known && g.cool.n > uint32(e.cfg.Peers.WarmupPolls) && !g.inLoad(g.cool.lastUpd, &e.cfg.Peers)
}

// stringsRise is the median rise of a UPS's usable strings (NaN: none).
func (e *Engine) stringsRise(u *upsState) float64 {
	return e.stringsMedian(u, func(g *group) float64 { return g.cool.rise })
}

// stringsLimit is the rise at which a UPS without an ambient sensor is
// warming: the configured rise, or spread_factor times its usable strings'
// median learned spread when that is more.
func (e *Engine) stringsLimit(u *upsState, rise float64) float64 {
	sd := e.stringsMedian(u, func(g *group) float64 { return math.Sqrt(g.cool.vr) })
	if math.IsNaN(sd) {
		return rise
	}
	return max(rise, e.cfg.CoolingFailure.SpreadFactor*sd)
}

// stringsMedian is the median of f over a UPS's usable strings (NaN: none).
func (e *Engine) stringsMedian(u *upsState, f func(g *group) float64) float64 {
	v := e.scratch(3)
	for _, gi := range u.groups {
		if g := &e.groups[gi]; e.coolingUsable(g) {
			v = append(v, f(g))
		}
	}
	m := median(v)
	e.keep(3, v)
	return m
}

// upsCooling evaluates CoolingFailure for a UPS's room.
func (e *Engine) upsCooling(u *upsState, t int64, out []Change) []Change {
	cc := &e.cfg.CoolingFailure
	if !cc.Enabled {
		return out
	}
	rise := u.amb.rise
	what := "ambient"
	if !u.amb.known {
		rise, what = e.stringsRise(u), "its strings"
	}
	room := e.roomWarming(u)
	climbing := e.roomClimbing(u) || e.stringsClimbing(u)
	for i, limit := range [2]float64{cc.WarningRise, cc.CriticalRise} {
		reach := u.amb.limit(limit, cc.SpreadFactor)
		if !u.amb.known {
			reach = e.stringsLimit(u, limit)
		}
		active := room && rise >= reach && (i > 0 || e.roomGoesOn(u, rise, reach)) || i == 0 && climbing
		if u.amb.warn[i].firing() {
			active = rise >= 0.6*limit
		}
		sev := SeverityWarning + Severity(i)
		if t < u.amb.warn[i].since() {
			t = u.amb.warn[i].since()
		}
		out = e.emit(out, u.amb.warn[i].step(t, active, &cc.Hold), t, AlertCoolingFailure, sev, u.id, rise,
			func() string {
				return fmt.Sprintf("the room of ups %s is warming: %s %s °C above normal, its batteries warming with it",
					e.path(u.id), what, fmtDelta(rise))
			})
	}
	u.amb.track(t)
	return out
}

// stringCharge learns a string's normal median cell voltage while it is
// idle (on float) and raises ChargeVoltageHigh when the cells sit above it
// together: a charger holding the string above its float voltage. Load and
// its cooldown (a recharge ends at the charge voltage) neither learn nor
// alert; a firing alert holds the normal still, up to maxFreeze.
func (e *Engine) stringCharge(g *group, medV float64, t int64, load bool, out []Change) []Change {
	cc := &e.cfg.ChargeVoltageHigh
	// The normal learns a reading at most half the alert's rise below
	// itself. A discharge and its recharge hold the cells far below their
	// float voltage for an hour or more; a string that reports no current
	// (nothing marks it as under load) would otherwise learn that as its
	// normal, and its float voltage, when the recharge ends, would page as
	// an overcharge. A lasting lower float is still learned, by about
	// that much per time constant.
	base, known := g.charge.base, g.charge.known
	learnV := medV
	if known {
		learnV = max(medV, base-0.5*cc.RiseVolts)
	}
	// A string that reports no current may be recharging, above its float
	// voltage, for hours after it was seen discharged (not after a mere
	// dip, which must not hide an overcharge); its normal must not learn
	// that either, nor an overcharge that begins meanwhile.
	recharging := !g.currentKnown(t) && g.lastLow != 0 && t-g.lastLow < int64(rechargeHold)
	g.charge.learn(learnV, t, cc.Learning.Nanos(), cc.Learning.Nanos(), uint32(e.cfg.Peers.WarmupPolls), math.Inf(1), load || recharging || g.charge.firing())
	if known {
		g.charge.rise = medV - base
	}
	if !cc.Enabled {
		return out
	}
	active := !load && !recharging && g.charge.n > uint32(e.cfg.Peers.WarmupPolls) && g.charge.rise >= cc.RiseVolts
	if g.charge.warn[0].firing() {
		active = g.charge.rise >= 0.6*cc.RiseVolts
	}
	out = e.emit(out, g.charge.warn[0].step(t, active, &cc.Hold), t, AlertChargeVoltageHigh, SeverityWarning, g.id, g.charge.rise,
		func() string {
			return fmt.Sprintf("the cells of string %s sit %.0f mV above their normal %.3f V while idle: the charger holds them too high",
				e.path(g.id), g.charge.rise*1000, g.charge.base)
		})
	g.charge.track(t)
	return out
}
