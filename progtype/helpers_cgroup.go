package progtype

import (
	"fmt"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/maps"
)

// Cgroup is a control group of cgroup v2 as the cgroup helpers see it: its
// id (in Linux the inode number of its directory in the cgroup file
// system, what bpf_get_current_cgroup_id returns) and its parent, nil for
// the root. A task belongs to one cgroup (Task.Cgroup) and so do the
// sockets it creates: the test run's socket of a socket buffer run belongs
// to the current task's cgroup, as in Linux, where the socket is created
// by the task running the test. Cgroup arrays hold *Cgroup values.
type Cgroup struct {
	ID     uint64
	Parent *Cgroup
}

// rootCgroup is the cgroup of a task without one.
var rootCgroup = &Cgroup{ID: RootCgroupID}

// maxCgroupDepth bounds the walks up a Cgroup chain, so a cycle made by
// mistake ends.
const maxCgroupDepth = 1 << 16

// Level returns the cgroup's depth: 0 for the root.
func (c *Cgroup) Level() int {
	n := 0
	for p := c.Parent; p != nil && n < maxCgroupDepth; p = p.Parent {
		n++
	}
	return n
}

// Under reports whether c is ancestor or lies below it, comparing ids:
// cgroup_is_descendant.
func (c *Cgroup) Under(ancestor *Cgroup) bool {
	n := 0
	for p := c; p != nil && n < maxCgroupDepth; p, n = p.Parent, n+1 {
		if p.ID == ancestor.ID {
			return true
		}
	}
	return false
}

// Ancestor returns the ancestor of c at level (0 is the root), c itself at
// its own level, nil below it: cgroup_ancestor.
func (c *Cgroup) Ancestor(level int) *Cgroup {
	d := c.Level()
	if level < 0 || level > d {
		return nil
	}
	p := c
	for ; d > level; d-- {
		p = p.Parent
	}
	return p
}

// cgroupOf returns the current task's cgroup: the root without a task or
// without Task.Cgroup.
func (r *Run) cgroupOf() *Cgroup {
	if t := r.in.Task; t != nil && t.Cgroup != nil {
		return t.Cgroup
	}
	return rootCgroup
}

// cgroupAt returns the cgroup in slot idx of the cgroup array given to a
// helper, or the errno the helper returns: -E2BIG past the end, -EAGAIN
// for an empty slot.
func cgroupAt(env helpers.Env, handle, idx uint64) (*Cgroup, maps.Errno, error) {
	st := env.State()
	var m maps.Map
	ok := false
	if st.Maps != nil {
		m, ok = st.Maps.Lookup(handle)
	}
	if !ok {
		return nil, 0, fmt.Errorf("%#x is not a map", handle)
	}
	cs, ok := m.(maps.CgroupSlots)
	if !ok || m.Spec().Type != maps.CgroupArray {
		return nil, 0, fmt.Errorf("map %s is a %s, not a cgroup array", m.Spec().Name, m.Spec().Type)
	}
	if uint32(idx) >= m.Spec().MaxEntries {
		return nil, maps.E2BIG, nil
	}
	v, ok := cs.Cgroup(uint32(idx))
	if !ok {
		return nil, maps.EAGAIN, nil
	}
	cg, ok := v.(*Cgroup)
	if !ok || cg == nil {
		return nil, 0, fmt.Errorf("map %s slot %d holds a %T, not a *progtype.Cgroup", m.Spec().Name, idx, v)
	}
	return cg, 0, nil
}

// CurrentTaskUnderCgroup is bpf_current_task_under_cgroup: 1 if the
// current task's cgroup is the one in the cgroup array's slot or below it,
// 0 if not.
func CurrentTaskUnderCgroup(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, err := runOf(env)
	if err != nil {
		return 0, err
	}
	cg, e, err := cgroupAt(env, args[0], uint64(uint32(args[1])))
	if err != nil {
		return 0, fmt.Errorf("current_task_under_cgroup: %w", err)
	}
	if e != 0 {
		return errno(e), nil
	}
	return uint64(b2i(r.cgroupOf().Under(cg))), nil
}

// SkbUnderCgroup is bpf_skb_under_cgroup: whether the packet's socket
// belongs to the cgroup in the array's slot or below it. The socket of a
// socket buffer run is the test run's, in the current task's cgroup.
func SkbUnderCgroup(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, _, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	cg, e, err := cgroupAt(env, args[1], uint64(uint32(args[2])))
	if err != nil {
		return 0, fmt.Errorf("skb_under_cgroup: %w", err)
	}
	if e != 0 {
		return errno(e), nil
	}
	return uint64(b2i(r.cgroupOf().Under(cg))), nil
}

// GetCurrentCgroupID is bpf_get_current_cgroup_id: the id of the current
// task's cgroup.
func GetCurrentCgroupID(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, err := runOf(env)
	if err != nil {
		return 0, err
	}
	return r.cgroupOf().ID, nil
}

// GetCurrentAncestorCgroupID is bpf_get_current_ancestor_cgroup_id: the id
// of the current task's cgroup's ancestor at the level given, 0 below the
// task's own.
func GetCurrentAncestorCgroupID(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, err := runOf(env)
	if err != nil {
		return 0, err
	}
	return ancestorID(r.cgroupOf(), int64(int32(args[0]))), nil
}

func ancestorID(c *Cgroup, level int64) uint64 {
	if level < 0 || level > maxCgroupDepth {
		return 0
	}
	if a := c.Ancestor(int(level)); a != nil {
		return a.ID
	}
	return 0
}

// SkbCgroupID is bpf_skb_cgroup_id: the id of the cgroup of the packet's
// socket.
func SkbCgroupID(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, _, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	return r.cgroupOf().ID, nil
}

// SkbAncestorCgroupID is bpf_skb_ancestor_cgroup_id.
func SkbAncestorCgroupID(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, _, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	return ancestorID(r.cgroupOf(), int64(int32(args[1]))), nil
}

var protoCgroupArray = helpers.Proto{Args: []helpers.ArgType{helpers.ArgConstMapPtr, helpers.ArgAnything}}

// cgroupDefs are the cgroup helpers of every run.
var cgroupDefs = helpers.Defs{
	{ID: idGetCgroupClassid, Name: "get_cgroup_classid", Proto: helpers.Proto{}, Func: GetCgroupClassid},
	{ID: idCurrentTaskUnderCgroup, Name: "current_task_under_cgroup", Proto: protoCgroupArray, Func: CurrentTaskUnderCgroup},
	{ID: idGetCurrentCgroupID, Name: "get_current_cgroup_id", Proto: helpers.Proto{}, Func: GetCurrentCgroupID},
	{ID: idGetCurrentAncestorCgID, Name: "get_current_ancestor_cgroup_id", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgAnything}}, Func: GetCurrentAncestorCgroupID},
	{ID: idGetRetval, Name: "get_retval", Proto: helpers.Proto{}, Func: GetRetval},
	{ID: idSetRetval, Name: "set_retval", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgAnything}}, Func: SetRetval},
}

// GetRetval is bpf_get_retval: the cgroup run context's retval, what
// bpf_set_retval last set in this run, 0 before (Output.CgroupRetval).
// Which hooks may call it, Kind.Allowed says (cgroup_common_func_proto).
func GetRetval(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, err := runOf(env)
	if err != nil {
		return 0, err
	}
	return uint64(int64(r.cgRetval)), nil
}

// SetRetval is bpf_set_retval: it sets the cgroup run context's retval
// (an int, as in Linux, which keeps the low 32 bits of the argument) and
// returns 0.
func SetRetval(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, err := runOf(env)
	if err != nil {
		return 0, err
	}
	r.cgRetval = int32(args[0])
	return 0, nil
}

// GetCgroupClassid is bpf_get_cgroup_classid: the net_cls classid of the
// current task (Task.Classid), 0 without one. Socket buffer programs pass
// the packet, whose socket's classid Linux reads only in softirq context,
// never in a test run, so the task's is the answer there too.
func GetCgroupClassid(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, err := runOf(env)
	if err != nil {
		return 0, err
	}
	if t := r.in.Task; t != nil {
		return uint64(t.Classid), nil
	}
	return 0, nil
}

// SkbCgroupClassid is bpf_skb_cgroup_classid: the net_cls classid of the
// packet's socket, which is the task's that made it (Task.Classid); 0
// without one.
func SkbCgroupClassid(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, _, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	if t := r.in.Task; t != nil {
		return uint64(t.Classid), nil
	}
	return 0, nil
}

// GetRouteRealm is bpf_get_route_realm: the realm (tclassid) of the route
// attached to the packet. Packets reach socket buffer programs before
// routing (tc ingress) or, in a test run, with no route at all, and
// waggle's routes have no realms, so it is 0, as Linux answers without a
// route.
func GetRouteRealm(env helpers.Env, args *[5]uint64) (uint64, error) {
	if _, _, err := skbOf(env); err != nil {
		return 0, err
	}
	return 0, nil
}

// skbCgroupDefs are the cgroup helpers of socket buffer runs.
var skbCgroupDefs = helpers.Defs{
	{ID: idGetCgroupClassid, Name: "get_cgroup_classid", Proto: protoCtx, Func: GetCgroupClassid},
	{ID: idSkbCgroupClassid, Name: "skb_cgroup_classid", Proto: protoCtx, Func: SkbCgroupClassid},
	{ID: idGetRouteRealm, Name: "get_route_realm", Proto: protoCtx, Func: GetRouteRealm},
	{ID: idSkbUnderCgroup, Name: "skb_under_cgroup", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgConstMapPtr, helpers.ArgAnything}}, Func: SkbUnderCgroup},
	{ID: idSkbCgroupID, Name: "skb_cgroup_id", Proto: protoCtx, Func: SkbCgroupID},
	{ID: idSkbAncestorCgroupID, Name: "skb_ancestor_cgroup_id", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything}}, Func: SkbAncestorCgroupID},
}
