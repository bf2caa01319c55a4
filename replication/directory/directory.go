// Package directory is the etcd side of a Strata cluster: the registry of metadata nodes
// (each under a lease it keeps alive), the leader hint of each Raft group, and the election
// that lets exactly one node bootstrap a new group.
//
// Keys (all under Prefix):
//
//	nodes/<id>                  JSON NodeInfo, on the node's lease
//	groups/<group>/leader       JSON NodeInfo of the leader, written by it on its lease
//	groups/<group>/bootstrapped the ID of the node that bootstrapped the group (no lease)
//	groups/<group>/bootstrap/   the bootstrap election (concurrency.Election)
//
// Invariants:
//
//   - Raft leadership, not etcd, is the authority for writes: the leader key is a hint that
//     routes clients, and a stale hint only costs a NOT_LEADER redirect.
//   - A registration outlives a lost lease (etcd partition, expiry): it grants a new lease
//     and writes its keys again, and keeps doing so until Close.
//   - A group is bootstrapped at most once: Bootstrap runs its function only while holding
//     the election and only when groups/<group>/bootstrapped is absent, and writes that key
//     before resigning.
package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Prefix is the root of every key Strata keeps in etcd.
const Prefix = "/strata/"

const (
	// DefaultTTL is the lease TTL of a registration, in seconds.
	DefaultTTL = 5
	// reRegisterBackoff is the pause between attempts to register again after a lost lease.
	reRegisterBackoff = 500 * time.Millisecond
	// opTimeout bounds each etcd request made in the background.
	opTimeout = 5 * time.Second
)

// NodeInfo is what a metadata node publishes about itself.
type NodeInfo struct {
	ID       string `json:"id"`
	GRPCAddr string `json:"grpc_addr"`
	RaftAddr string `json:"raft_addr"`
}

// Directory reads and writes the cluster's keys in etcd.
type Directory struct {
	client *clientv3.Client
	logger *slog.Logger
}

// Dial connects to the etcd cluster at endpoints (comma-separated host:port or URLs).
func Dial(endpoints string) (*clientv3.Client, error) {
	var eps []string
	for _, e := range strings.Split(endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	if len(eps) == 0 {
		return nil, errors.New("dial etcd: no endpoints")
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("dial etcd at %s: %w", endpoints, err)
	}
	return c, nil
}

// New returns a Directory on client; logger defaults to slog.Default().
func New(client *clientv3.Client, logger *slog.Logger) *Directory {
	if logger == nil {
		logger = slog.Default()
	}
	return &Directory{client: client, logger: logger}
}

// Client is the underlying etcd client.
func (d *Directory) Client() *clientv3.Client { return d.client }

func nodeKey(id string) string           { return Prefix + "nodes/" + id }
func leaderKey(group string) string      { return Prefix + "groups/" + group + "/leader" }
func bootedKey(group string) string      { return Prefix + "groups/" + group + "/bootstrapped" }
func electionPrefix(group string) string { return Prefix + "groups/" + group + "/bootstrap" }

// Nodes lists the registered nodes, sorted by ID.
func (d *Directory) Nodes(ctx context.Context) ([]NodeInfo, error) {
	resp, err := d.client.Get(ctx, Prefix+"nodes/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list nodes in etcd: %w", err)
	}
	return decodeNodes(resp.Kvs), nil
}

// Node returns the registration of node id; ok is false when it is not registered.
func (d *Directory) Node(ctx context.Context, id string) (info NodeInfo, ok bool, err error) {
	resp, err := d.client.Get(ctx, nodeKey(id))
	if err != nil {
		return NodeInfo{}, false, fmt.Errorf("read node %s in etcd: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return NodeInfo{}, false, nil
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &info); err != nil {
		return NodeInfo{}, false, fmt.Errorf("decode node %s from etcd: %w", id, err)
	}
	return info, true, nil
}

func decodeNodes(kvs []*mvccpb.KeyValue) []NodeInfo {
	nodes := make([]NodeInfo, 0, len(kvs))
	for _, kv := range kvs {
		var n NodeInfo
		if err := json.Unmarshal(kv.Value, &n); err != nil || n.ID == "" {
			continue // not ours to interpret; a registration is always valid JSON with an ID
		}
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	return nodes
}

// WatchNodes sends the full list of registered nodes now and after every change, until ctx
// ends; then the channel closes. A slow reader only misses intermediate lists, never the
// latest one.
func (d *Directory) WatchNodes(ctx context.Context) <-chan []NodeInfo {
	out := make(chan []NodeInfo, 1)
	go func() {
		defer close(out)
		watchLoop(ctx, d, Prefix+"nodes/", true, func(kvs []*mvccpb.KeyValue) {
			sendLatest(out, decodeNodes(kvs))
		})
	}()
	return out
}

// Leader returns the leader hint of group; ok is false when there is none.
func (d *Directory) Leader(ctx context.Context, group string) (info NodeInfo, ok bool, err error) {
	resp, err := d.client.Get(ctx, leaderKey(group))
	if err != nil {
		return NodeInfo{}, false, fmt.Errorf("read leader of group %s in etcd: %w", group, err)
	}
	if len(resp.Kvs) == 0 {
		return NodeInfo{}, false, nil
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &info); err != nil {
		return NodeInfo{}, false, fmt.Errorf("decode leader of group %s: %w", group, err)
	}
	return info, true, nil
}

// WatchLeader sends group's leader hint now and after every change (a zero NodeInfo when
// there is none) until ctx ends; then the channel closes.
func (d *Directory) WatchLeader(ctx context.Context, group string) <-chan NodeInfo {
	out := make(chan NodeInfo, 1)
	go func() {
		defer close(out)
		watchLoop(ctx, d, leaderKey(group), false, func(kvs []*mvccpb.KeyValue) {
			var info NodeInfo
			if len(kvs) > 0 {
				_ = json.Unmarshal(kvs[0].Value, &info) // a malformed hint counts as none
			}
			sendLatest(out, info)
		})
	}()
	return out
}

// watchLoop reads key (or the prefix) and calls emit with its current contents, then again
// after every change, re-reading and re-watching from the read's revision after a broken
// watch, until ctx ends.
func watchLoop(ctx context.Context, d *Directory, key string, prefix bool, emit func([]*mvccpb.KeyValue)) {
	var opts []clientv3.OpOption
	if prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	for ctx.Err() == nil {
		resp, err := d.client.Get(ctx, key, opts...)
		if err != nil {
			if ctx.Err() == nil {
				d.logger.Warn("etcd read for watch failed; retrying", "key", key, "err", err)
				sleep(ctx, reRegisterBackoff)
			}
			continue
		}
		emit(resp.Kvs)
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := d.client.Watch(wctx, key, append(opts, clientv3.WithRev(resp.Header.Revision+1))...)
		for wr := range wch {
			if wr.Err() != nil {
				break
			}
			if len(wr.Events) == 0 {
				continue
			}
			// Re-read rather than fold events: the lists are small and this cannot drift.
			r, err := d.client.Get(ctx, key, opts...)
			if err != nil {
				break
			}
			emit(r.Kvs)
		}
		cancel()
	}
}

func sendLatest[T any](out chan T, v T) {
	for {
		select {
		case out <- v:
			return
		default:
		}
		select {
		case <-out: // drop the stale value the reader has not taken yet
		default:
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Bootstrap decides whether this node bootstraps group. It campaigns in the group's
// bootstrap election (waiting while another node holds it); once elected, if the group was
// never bootstrapped it calls boot, and only when boot succeeds records the group as
// bootstrapped by id. It returns true when this call ran boot successfully, false when the
// group already existed (the caller joins it).
func (d *Directory) Bootstrap(ctx context.Context, group, id string, boot func(context.Context) error) (bool, error) {
	session, err := concurrency.NewSession(d.client, concurrency.WithTTL(DefaultTTL), concurrency.WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("bootstrap election for group %s: open etcd session: %w", group, err)
	}
	defer session.Close()
	election := concurrency.NewElection(session, electionPrefix(group))
	if err := election.Campaign(ctx, id); err != nil {
		return false, fmt.Errorf("bootstrap election for group %s: campaign: %w", group, err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := election.Resign(rctx); err != nil {
			d.logger.Warn("resign the bootstrap election", "group", group, "err", err)
		}
	}()
	resp, err := d.client.Get(ctx, bootedKey(group))
	if err != nil {
		return false, fmt.Errorf("bootstrap group %s: read marker: %w", group, err)
	}
	if len(resp.Kvs) > 0 {
		return false, nil
	}
	if err := boot(ctx); err != nil {
		return false, fmt.Errorf("bootstrap group %s: %w", group, err)
	}
	// Only while still holding the election: a node whose session expired during boot must
	// not mark the group, since another node may have been elected meanwhile.
	txn, err := d.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(election.Key()), ">", 0)).
		Then(clientv3.OpPut(bootedKey(group), id)).
		Commit()
	if err != nil {
		return false, fmt.Errorf("bootstrap group %s: write marker: %w", group, err)
	}
	if !txn.Succeeded {
		return false, fmt.Errorf("bootstrap group %s: lost the bootstrap election while bootstrapping", group)
	}
	return true, nil
}

// Bootstrapped returns the ID of the node that bootstrapped group, "" if none did.
func (d *Directory) Bootstrapped(ctx context.Context, group string) (string, error) {
	resp, err := d.client.Get(ctx, bootedKey(group))
	if err != nil {
		return "", fmt.Errorf("read bootstrap marker of group %s: %w", group, err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

// Registration keeps a node's key (and the leader hints it holds) in etcd on a lease until
// Close.
type Registration struct {
	d    *Directory
	info NodeInfo
	ttl  int64

	mu      sync.Mutex
	lease   clientv3.LeaseID
	leading map[string]bool // groups whose leader hint this node holds

	ctx    context.Context
	stop   context.CancelFunc
	done   chan struct{}
	leases chan struct{} // signalled after every successful (re-)registration, for tests
}

// Register writes info under nodes/<id> on a lease of ttl seconds (DefaultTTL if 0) and
// keeps it alive, registering again whenever the lease is lost, until Close.
func (d *Directory) Register(ctx context.Context, info NodeInfo, ttl int64) (*Registration, error) {
	if info.ID == "" {
		return nil, errors.New("register node: empty ID")
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	bg, stop := context.WithCancel(context.Background())
	r := &Registration{d: d, info: info, ttl: ttl, leading: map[string]bool{}, ctx: bg, stop: stop,
		done: make(chan struct{}), leases: make(chan struct{}, 1)}
	keepAlive, err := r.register(ctx)
	if err != nil {
		stop()
		return nil, err
	}
	go r.run(keepAlive)
	return r, nil
}

// register grants a lease, writes the node key and the held leader hints on it and starts
// keeping it alive.
func (r *Registration) register(ctx context.Context) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	c := r.d.client
	grant, err := c.Grant(ctx, r.ttl)
	if err != nil {
		return nil, fmt.Errorf("register node %s: grant etcd lease: %w", r.info.ID, err)
	}
	value, _ := json.Marshal(r.info)
	r.mu.Lock()
	ops := []clientv3.Op{clientv3.OpPut(nodeKey(r.info.ID), string(value), clientv3.WithLease(grant.ID))}
	for group := range r.leading {
		ops = append(ops, clientv3.OpPut(leaderKey(group), string(value), clientv3.WithLease(grant.ID)))
	}
	r.mu.Unlock()
	if _, err := c.Txn(ctx).Then(ops...).Commit(); err != nil {
		return nil, fmt.Errorf("register node %s: write keys: %w", r.info.ID, err)
	}
	keepAlive, err := c.KeepAlive(r.ctx, grant.ID)
	if err != nil {
		return nil, fmt.Errorf("register node %s: keep lease alive: %w", r.info.ID, err)
	}
	r.mu.Lock()
	r.lease = grant.ID
	r.mu.Unlock()
	select {
	case r.leases <- struct{}{}:
	default:
	}
	return keepAlive, nil
}

func (r *Registration) run(keepAlive <-chan *clientv3.LeaseKeepAliveResponse) {
	defer close(r.done)
	for {
		for range keepAlive { // drains until the lease is lost or Close
		}
		if r.ctx.Err() != nil {
			return
		}
		r.d.logger.Warn("etcd lease lost; registering again", "node", r.info.ID)
		for {
			ctx, cancel := context.WithTimeout(r.ctx, opTimeout)
			ka, err := r.register(ctx)
			cancel()
			if err == nil {
				keepAlive = ka
				r.d.logger.Info("registered in etcd again", "node", r.info.ID)
				break
			}
			if r.ctx.Err() != nil {
				return
			}
			r.d.logger.Warn("register in etcd again", "node", r.info.ID, "err", err)
			sleep(r.ctx, reRegisterBackoff)
		}
	}
}

// SetLeader writes (leading) or deletes (not leading) this node's leader hint for group.
// Deleting only removes a hint this node wrote.
func (r *Registration) SetLeader(ctx context.Context, group string, leading bool) error {
	r.mu.Lock()
	if leading {
		r.leading[group] = true
	} else {
		delete(r.leading, group)
	}
	lease := r.lease
	r.mu.Unlock()
	c := r.d.client
	if leading {
		value, _ := json.Marshal(r.info)
		if _, err := c.Put(ctx, leaderKey(group), string(value), clientv3.WithLease(lease)); err != nil {
			return fmt.Errorf("write leader hint of group %s: %w", group, err)
		}
		return nil
	}
	_, err := c.Txn(ctx).
		If(clientv3.Compare(clientv3.LeaseValue(leaderKey(group)), "=", lease)).
		Then(clientv3.OpDelete(leaderKey(group))).
		Commit()
	if err != nil {
		return fmt.Errorf("delete leader hint of group %s: %w", group, err)
	}
	return nil
}

// Info is what this registration publishes.
func (r *Registration) Info() NodeInfo { return r.info }

// Close stops keeping the lease alive and revokes it, which deletes the node key and the
// leader hints it holds.
func (r *Registration) Close(ctx context.Context) error {
	r.stop()
	<-r.done
	r.mu.Lock()
	lease := r.lease
	r.mu.Unlock()
	if _, err := r.d.client.Revoke(ctx, lease); err != nil {
		return fmt.Errorf("revoke etcd lease of node %s: %w", r.info.ID, err)
	}
	return nil
}
