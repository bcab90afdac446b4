// AdminService: create/get/list/update/delete for every resource and Apply
// (several resources, one transaction), each call authenticated by bearer
// token, checked against the caller's tenant, validated, and stored in one
// transaction (a refused call stores nothing). Updates carry the revision the
// caller read and are refused with ABORTED when the resource changed since,
// so a read-modify-write never loses another writer's change. Resources a
// tenant admin may not see are NOT_FOUND to them, as if absent.
import { clone, create, equals } from '@bufbuild/protobuf';
import { status as Status } from '@grpc/grpc-js';
import { HostnetError, alreadyExists, invalidArgument, notFound, permissionDenied } from '../../../proto/grpc/errors.js';
import type { CallContext, ServiceImpl } from '../../../proto/grpc/server.js';
import { type AdminService, ApplyOutcome, type Resource, ResourceSchema } from '../../../proto/gen/hostnet/v1/admin_pb.js';
import type { HostRollout } from '../../../proto/gen/hostnet/v1/admin_pb.js';
import type { Acl, Host, NetworkObject, Subnet, Tenant } from '../../../proto/gen/hostnet/v1/resources_pb.js';
import { prepareHost } from '../hosts.js';
import { compileSwitch } from '../switches.js';
import { KINDS, type ResourceKind as Kind, type Reader, type ResourceOf, type Store, type Stored, type Tx } from '../store/store.js';
import {
  type Caller, type HostRules, refuseIfReferenced, sees, validateAcl, validateCatalog, validateObject, validateSubnet, validateSwitch, validateTenant,
} from '../validate.js';
import { checkDependents } from './dependents.js';
import type { Tokens } from './tokens.js';
import { type IdentityOptions, createEnrollment } from '../identity/enrollment.js';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';

type Methods = typeof AdminService extends { method: infer M } ? M : never;

export interface AdminDeps {
  readonly store: Store;
  readonly tokens: Tokens;
  readonly hosts?: HostRules;
  /** Rollout state of the hosts (from the agents' side), as GetRollout answers it. */
  readonly rollout?: () => readonly HostRollout[];
  /** The agents CA and lifetimes (CreateEnrollment). */
  readonly identity?: IdentityOptions;
}

/** The tenant a stored resource belongs to (undefined for catalogs, which have none). */
export function tenantOf(store: Reader, kind: Kind, value: ResourceOf<Kind>): string | undefined {
  switch (kind) {
    case 'tenant': return (value as Tenant).id;
    case 'subnet': return (value as Subnet).tenantId;
    case 'object': return (value as NetworkObject).tenantId;
    case 'acl': return store.get('subnet', (value as Acl).subnetId)?.value.tenantId;
    case 'host': return store.get('subnet', (value as Host).subnetId)?.value.tenantId;
    case 'catalog': case 'switch': return undefined;
  }
}

/** Whether the caller may see a resource (catalogs are readable by everyone, switches by operators only). */
function visible(store: Reader, caller: Caller, kind: Kind, value: ResourceOf<Kind>): boolean {
  return kind === 'catalog' || sees(caller, tenantOf(store, kind, value));
}

interface KindSpec<K extends Kind> {
  readonly kind: K;
  /** The request field that holds the resource, e.g. "network_object". */
  readonly field: string;
  /** The Resource oneof case of this kind. */
  readonly oneof: NonNullable<Resource['kind']['case']>;
  readonly keyOf: (v: ResourceOf<K>) => string;
  /** Checks `v` and returns it as it is to be stored (allocated fields filled in). */
  readonly validate: (tx: Tx, v: ResourceOf<K>, caller: Caller, existing: ResourceOf<K> | undefined) => ResourceOf<K>;
  /** Only operators delete these. */
  readonly operatorDelete: boolean;
}

type Mode = 'create' | 'update' | 'apply';

const withoutRevision = <K extends Kind>(kind: K, v: ResourceOf<K>): ResourceOf<K> =>
  create(KINDS[kind], { ...v, revision: 0n });

/** A HostnetError whose field (and message) are prefixed, e.g. with "resources[2].". */
function within(prefix: string, err: unknown): unknown {
  if (!(err instanceof HostnetError)) return err;
  const d = err.detail;
  const message = d.field && d.message.startsWith(`${d.field}:`) ? `${prefix}${d.message}` : d.message;
  return new HostnetError(err.code, { ...d, field: d.field ? `${prefix}${d.field}` : '', message }, { cause: err });
}

export function adminService(deps: AdminDeps): ServiceImpl<Methods> {
  const { store } = deps;
  const rules = deps.hosts ?? {};
  const caller = (ctx: CallContext): Caller => deps.tokens.authenticate(ctx.metadata.get('authorization')[0]?.toString());

  const write = <T>(fn: (tx: Tx) => T): Promise<{ result: T; revision: number }> => store.transact(fn);
  /** Reads come from this replica's snapshot: refused while it may be stale (etcd out of reach, no leader). */
  const current = (): void => {
    if (!store.live()) {
      throw new HostnetError(Status.UNAVAILABLE, {
        reason: 'STORE_UNAVAILABLE', message: 'this controller replica is not following the store (etcd out of reach or without a leader); try another replica',
      });
    }
  };

  const spec = <K extends Kind>(s: KindSpec<K>): KindSpec<K> => s;
  const specs = {
    tenant: spec({ kind: 'tenant', field: 'tenant', oneof: 'tenant', keyOf: (v) => v.id, operatorDelete: true, validate: (_tx, v, c) => validateTenant(v, c) }),
    subnet: spec({ kind: 'subnet', field: 'subnet', oneof: 'subnet', keyOf: (v) => v.id, operatorDelete: false, validate: (tx, v, c) => validateSubnet(v, tx, c) }),
    catalog: spec({ kind: 'catalog', field: 'network_catalog', oneof: 'networkCatalog', keyOf: (v) => v.name, operatorDelete: true, validate: (_tx, v, c) => validateCatalog(v, c) }),
    host: spec({ kind: 'host', field: 'host', oneof: 'host', keyOf: (v) => v.id, operatorDelete: true, validate: (tx, v, c, existing) => prepareHost(tx, v, c, existing, rules) }),
    object: spec({ kind: 'object', field: 'network_object', oneof: 'networkObject', keyOf: (v) => v.id, operatorDelete: false, validate: (tx, v, c) => validateObject(v, tx, c) }),
    acl: spec({ kind: 'acl', field: 'acl', oneof: 'acl', keyOf: (v) => v.subnetId, operatorDelete: false, validate: (tx, v, c) => validateAcl(v, tx, c) }),
    switch: spec({ kind: 'switch', field: 'switch', oneof: 'switch', keyOf: (v) => v.name, operatorDelete: true, validate: (tx, v, c) => validateSwitch(v, tx, c) }),
  } satisfies { [K in Kind]: KindSpec<K> };

  /**
   * Validates and writes one resource in `tx`. Returns what happened and the
   * value as stored (its revision is filled in after the commit).
   */
  function put<K extends Kind>(tx: Tx, s: KindSpec<K>, v: ResourceOf<K>, c: Caller, mode: Mode): { outcome: ApplyOutcome; value: ResourceOf<K> } {
    const key = s.keyOf(v);
    const name = `${s.kind}/${key}`;
    const existing: Stored<K> | undefined = tx.get(s.kind, key);
    const seen = existing !== undefined && visible(tx, c, s.kind, existing.value);
    if (existing && !seen) {
      if (mode === 'update') throw notFound(name);
      // The id is taken by something the caller cannot see: say so, and nothing about it.
      throw new HostnetError(Status.ALREADY_EXISTS, { reason: 'ALREADY_EXISTS', resource: name, message: `${name}: the ${s.kind === 'catalog' ? 'name' : 'id'} is taken` });
    }
    if (mode === 'create' && existing) throw alreadyExists(name);
    if (mode === 'update' && !existing) throw notFound(name);
    // Validation first: it also decides whether the caller may change this at all.
    const value = s.validate(tx, v, c, existing?.value);
    if (existing) {
      const expected = v.revision;
      if (mode === 'update' && expected === 0n) {
        throw invalidArgument(`${s.field}.revision`, `is required: the revision of ${name} you read (Get returns it), so that a change made since is not overwritten`);
      }
      if (expected !== 0n && expected !== BigInt(existing.revision)) {
        throw new HostnetError(Status.ABORTED, {
          reason: 'REVISION_CHANGED', field: `${s.field}.revision`, resource: name,
          message: `${name} changed after revision ${expected} (it is at revision ${existing.revision} now): read it again, redo your change and retry`,
        });
      }
    }
    if (existing && equals(KINDS[s.kind], value, withoutRevision(s.kind, existing.value))) {
      return { outcome: ApplyOutcome.UNCHANGED, value: existing.value };
    }
    tx.put(s.kind, key, value);
    if (existing) checkDependents(tx, s.kind, existing.value, value, rules);
    return { outcome: existing ? ApplyOutcome.UPDATED : ApplyOutcome.CREATED, value };
  }

  /** Fills in the revision of values written by the transaction that committed `revision`. */
  const stamped = <T extends { outcome: ApplyOutcome; value: { revision: bigint } }>(r: T, revision: number): T => {
    if (r.outcome !== ApplyOutcome.UNCHANGED) r.value.revision = BigInt(revision);
    return r;
  };

  const required = <T>(v: T | undefined, field: string): T => {
    if (v === undefined) throw new HostnetError(Status.INVALID_ARGUMENT, { reason: 'FIELD_INVALID', field, message: `${field}: is required` });
    return v;
  };

  function crud<K extends Kind>(s: KindSpec<K>) {
    const change = (mode: Mode) => async (v: ResourceOf<K> | undefined, ctx: CallContext) => {
      const c = caller(ctx);
      const value = required(v, s.field);
      // A transaction may run again (another replica committed first): each run starts from the request as sent.
      const r = await write((tx) => put(tx, s, clone(KINDS[s.kind], value) as ResourceOf<K>, c, mode));
      return { value: stamped(r.result, r.revision).value, revision: BigInt(r.revision) };
    };
    const get = (key: string, ctx: CallContext): ResourceOf<K> => {
      const c = caller(ctx);
      current();
      const found = store.get(s.kind, key);
      if (!found || !visible(store, c, s.kind, found.value)) throw notFound(`${s.kind}/${key}`);
      return found.value;
    };
    const list = (tenantId: string, ctx: CallContext) => {
      const c = caller(ctx);
      current();
      const revision = BigInt(store.revision());
      const items = store.list(s.kind)
        .filter((x) => visible(store, c, s.kind, x.value))
        .filter((x) => !tenantId || tenantOf(store, s.kind, x.value) === tenantId)
        .map((x) => x.value);
      return { items, revision };
    };
    const remove = async (key: string, ctx: CallContext) => {
      const c = caller(ctx);
      const r = await write((tx) => {
        const found = tx.get(s.kind, key);
        if (!found || !visible(tx, c, s.kind, found.value)) throw notFound(`${s.kind}/${key}`);
        if (s.operatorDelete && c.role !== 'operator') throw permissionDenied(`only operators delete ${s.kind}s`, `${s.kind}/${key}`);
        if (s.kind !== 'acl') refuseIfReferenced(tx, s.kind, key);
        tx.delete(s.kind, key);
        // A deleted host's (or switch's) certificates are revoked with it (every replica ends their streams), and its token goes.
        if (s.kind === 'host' || s.kind === 'switch') {
          tx.delete('credential', key);
          tx.delete('enrollment', key);
        }
        // Released to the pool: its addresses stay held until every switch it was cabled to has applied the release
        // (session gone, filter gone, port back in the pool), so no other server takes an address an old session still carries.
        if (s.kind === 'host' && (found.value as Host).switchPorts.length > 0) tx.put('released', key, found.value as Host);
      });
      return { revision: BigInt(r.revision) };
    };
    return { create: change('create'), update: change('update'), get, list, remove };
  }

  const t = crud(specs.tenant);
  const s = crud(specs.subnet);
  const k = crud(specs.catalog);
  const h = crud(specs.host);
  const o = crud(specs.object);
  const a = crud(specs.acl);
  const w = crud(specs.switch);

  const byOneof = new Map<string, KindSpec<Kind>>(Object.values(specs).map((x) => [x.oneof, x as unknown as KindSpec<Kind>]));

  return {
    async createTenant(req, ctx) { const r = await t.create(req.tenant, ctx); return { tenant: r.value, revision: r.revision }; },
    async getTenant(req, ctx) { return { tenant: t.get(req.id, ctx) }; },
    async listTenants(_req, ctx) { const r = t.list('', ctx); return { tenants: r.items, revision: r.revision }; },
    async updateTenant(req, ctx) { const r = await t.update(req.tenant, ctx); return { tenant: r.value, revision: r.revision }; },
    async deleteTenant(req, ctx) { return t.remove(req.id, ctx); },

    async createSubnet(req, ctx) { const r = await s.create(req.subnet, ctx); return { subnet: r.value, revision: r.revision }; },
    async getSubnet(req, ctx) { return { subnet: s.get(req.id, ctx) }; },
    async listSubnets(req, ctx) { const r = s.list(req.tenantId, ctx); return { subnets: r.items, revision: r.revision }; },
    async updateSubnet(req, ctx) { const r = await s.update(req.subnet, ctx); return { subnet: r.value, revision: r.revision }; },
    async deleteSubnet(req, ctx) { return s.remove(req.id, ctx); },

    async createNetworkCatalog(req, ctx) { const r = await k.create(req.networkCatalog, ctx); return { networkCatalog: r.value, revision: r.revision }; },
    async getNetworkCatalog(req, ctx) { return { networkCatalog: k.get(req.name, ctx) }; },
    async listNetworkCatalogs(_req, ctx) { const r = k.list('', ctx); return { networkCatalogs: r.items, revision: r.revision }; },
    async updateNetworkCatalog(req, ctx) { const r = await k.update(req.networkCatalog, ctx); return { networkCatalog: r.value, revision: r.revision }; },
    async deleteNetworkCatalog(req, ctx) { return k.remove(req.name, ctx); },

    async createHost(req, ctx) { const r = await h.create(req.host, ctx); return { host: r.value, revision: r.revision }; },
    async getHost(req, ctx) { return { host: h.get(req.id, ctx) }; },
    async listHosts(req, ctx) { const r = h.list(req.tenantId, ctx); return { hosts: r.items, revision: r.revision }; },
    async updateHost(req, ctx) { const r = await h.update(req.host, ctx); return { host: r.value, revision: r.revision }; },
    async deleteHost(req, ctx) { return h.remove(req.id, ctx); },

    async createNetworkObject(req, ctx) { const r = await o.create(req.networkObject, ctx); return { networkObject: r.value, revision: r.revision }; },
    async getNetworkObject(req, ctx) { return { networkObject: o.get(req.id, ctx) }; },
    async listNetworkObjects(req, ctx) { const r = o.list(req.tenantId, ctx); return { networkObjects: r.items, revision: r.revision }; },
    async updateNetworkObject(req, ctx) { const r = await o.update(req.networkObject, ctx); return { networkObject: r.value, revision: r.revision }; },
    async deleteNetworkObject(req, ctx) { return o.remove(req.id, ctx); },

    async createAcl(req, ctx) { const r = await a.create(req.acl, ctx); return { acl: r.value, revision: r.revision }; },
    async getAcl(req, ctx) { return { acl: a.get(req.subnetId, ctx) }; },
    async listAcls(req, ctx) { const r = a.list(req.tenantId, ctx); return { acls: r.items, revision: r.revision }; },
    async updateAcl(req, ctx) { const r = await a.update(req.acl, ctx); return { acl: r.value, revision: r.revision }; },
    async deleteAcl(req, ctx) { return a.remove(req.subnetId, ctx); },

    async createSwitch(req, ctx) { const r = await w.create(req.switch, ctx); return { switch: r.value, revision: r.revision }; },
    async getSwitch(req, ctx) { return { switch: w.get(req.name, ctx) }; },
    async listSwitches(_req, ctx) { const r = w.list('', ctx); return { switches: r.items, revision: r.revision }; },
    async updateSwitch(req, ctx) { const r = await w.update(req.switch, ctx); return { switch: r.value, revision: r.revision }; },
    async deleteSwitch(req, ctx) { return w.remove(req.name, ctx); },
    async getSwitchConfig(req, ctx) {
      const sw = w.get(req.name, ctx);
      const revision = BigInt(store.revision());
      const c = compileSwitch(store, sw);
      return { frrConf: c.frrConf, version: c.version, revision };
    },

    async apply(req, ctx) {
      const c = caller(ctx);
      const r = await write((tx) => req.resources.map((res, i) => {
        try {
          const kind = res.kind;
          if (kind.case === undefined) throw invalidArgument('kind', 'is required: one resource of any kind');
          const x = byOneof.get(kind.case) as KindSpec<Kind>;
          const done = put(tx, x, clone(KINDS[x.kind], kind.value as ResourceOf<Kind>) as ResourceOf<Kind>, c, 'apply');
          return { resource: `${x.kind}/${x.keyOf(done.value)}`, outcome: done.outcome, oneof: x.oneof, value: done.value };
        } catch (err) {
          throw within(`resources[${i}].`, err);
        }
      }));
      const results = r.result.map((x) => {
        stamped(x, r.revision);
        return { resource: x.resource, outcome: x.outcome, value: create(ResourceSchema, { kind: { case: x.oneof, value: x.value } as Resource['kind'] }) };
      });
      return { results, revision: BigInt(r.revision) };
    },

    async createEnrollment(req, ctx) {
      const c = caller(ctx);
      if (c.role !== 'operator') throw permissionDenied('only operators create enrollment tokens', `host/${req.hostId}`);
      const identity = deps.identity;
      if (!identity) throw new HostnetError(Status.UNIMPLEMENTED, { reason: 'UNIMPLEMENTED', message: 'this controller has no agents CA (ca.certFile, ca.keyFile)' });
      const ttl = req.ttlSeconds > 0 ? req.ttlSeconds * 1000 : identity.tokenLifetimeMs;
      const r = await createEnrollment(store, identity, req.hostId, ttl, c.role);
      return { token: r.token, expiresAt: timestampFromDate(r.expiresAt), caFingerprint: identity.ca.fingerprint };
    },
    async getRollout(req, ctx) {
      const c = caller(ctx);
      if (!deps.rollout) {
        throw new HostnetError(Status.UNIMPLEMENTED, { reason: 'UNIMPLEMENTED', message: 'this controller does not serve agents' });
      }
      const hosts = deps.rollout()
        .filter((r) => !req.hostId || r.hostId === req.hostId)
        .filter((r) => {
          const found = store.get('host', r.hostId);
          return found !== undefined && visible(store, c, 'host', found.value);
        });
      return { hosts, revision: BigInt(store.revision()) };
    },
  };
}
