// AdminService: create/get/list/update/delete for every resource, each call
// authenticated by bearer token, checked against the caller's tenant,
// validated, and stored in one transaction (a refused call stores nothing).
// Resources a tenant admin may not see are NOT_FOUND to them, as if absent.
import { status as Status } from '@grpc/grpc-js';
import { HostnetError, alreadyExists, notFound, permissionDenied } from '../../../proto/grpc/errors.js';
import type { ServiceImpl } from '../../../proto/grpc/server.js';
import type { CallContext } from '../../../proto/grpc/server.js';
import type { AdminService } from '../../../proto/gen/hostnet/v1/admin_pb.js';
import type { Acl, Host, NetworkObject, Subnet, Tenant } from '../../../proto/gen/hostnet/v1/resources_pb.js';
import { type HostOptions, putHost } from '../hosts.js';
import type { Kind, Reader, ResourceOf, Store, Tx } from '../store/store.js';
import {
  type Caller, refuseIfReferenced, validateAcl, validateCatalog, validateObject, validateSubnet, validateTenant,
} from '../validate.js';
import type { Tokens } from './tokens.js';
import type { HostRollout } from '../sync/agents.js';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';

type Methods = typeof AdminService extends { method: infer M } ? M : never;

export interface AdminDeps {
  readonly store: Store;
  readonly tokens: Tokens;
  readonly hosts?: HostOptions;
  /** Called after every committed change, with its revision (the compiler listens). */
  readonly onChange?: (revision: number) => void;
  /** Rollout state per host (from the agents' side). */
  readonly rollout?: () => readonly HostRollout[];
}

/** The tenant a stored resource belongs to ('' for operator-only kinds without one). */
function tenantOf(store: Reader, kind: Kind, value: ResourceOf<Kind>): string | undefined {
  switch (kind) {
    case 'tenant': return (value as Tenant).id;
    case 'subnet': return (value as Subnet).tenantId;
    case 'object': return (value as NetworkObject).tenantId;
    case 'acl': return store.get('subnet', (value as Acl).subnetId)?.value.tenantId;
    case 'host': return store.get('subnet', (value as Host).subnetId)?.value.tenantId;
    case 'catalog': return undefined;
  }
}

/** Whether the caller may see a resource (catalogs are readable by everyone). */
function visible(store: Reader, caller: Caller, kind: Kind, value: ResourceOf<Kind>): boolean {
  if (caller.role === 'operator' || kind === 'catalog') return true;
  return tenantOf(store, kind, value) === caller.tenant;
}

interface KindSpec<K extends Kind> {
  readonly kind: K;
  /** Validates and stores; `replace` distinguishes update from create. */
  readonly put: (tx: Tx, v: ResourceOf<K>, caller: Caller, replace: boolean) => ResourceOf<K>;
  readonly deletable?: 'tenant' | 'subnet' | 'catalog' | 'object' | 'host';
}

export function adminService(deps: AdminDeps): ServiceImpl<Methods> {
  const { store } = deps;
  const caller = (ctx: CallContext): Caller => deps.tokens.authenticate(ctx.metadata.get('authorization')[0]?.toString());

  function write<T>(fn: (tx: Tx) => T): { result: T; revision: number } {
    const r = store.transact(fn);
    deps.onChange?.(r.revision);
    return r;
  }

  function simplePut<K extends Kind>(kind: K, validate: (v: ResourceOf<K>, tx: Tx, c: Caller) => ResourceOf<K>, keyOf: (v: ResourceOf<K>) => string) {
    return (tx: Tx, v: ResourceOf<K>, c: Caller, replace: boolean): ResourceOf<K> => {
      const key = keyOf(v);
      const existing = tx.get(kind, key);
      if (replace) {
        if (!existing || !visible(tx, c, kind, existing.value)) throw notFound(`${kind}/${key}`);
      } else if (existing) {
        throw visible(tx, c, kind, existing.value) ? alreadyExists(`${kind}/${key}`) : permissionDenied(`${kind}/${key} belongs to another tenant`, `${kind}/${key}`);
      }
      const valid = validate(v, tx, c);
      tx.put(kind, key, valid);
      return valid;
    };
  }

  const specs = {
    tenant: { kind: 'tenant', put: simplePut('tenant', (v, _tx, c) => validateTenant(v, c), (v) => v.id), deletable: 'tenant' },
    subnet: { kind: 'subnet', put: simplePut('subnet', (v, tx, c) => validateSubnet(v, tx, c), (v) => v.id), deletable: 'subnet' },
    catalog: { kind: 'catalog', put: simplePut('catalog', (v, _tx, c) => validateCatalog(v, c), (v) => v.name), deletable: 'catalog' },
    object: { kind: 'object', put: simplePut('object', (v, tx, c) => validateObject(v, tx, c), (v) => v.id), deletable: 'object' },
    acl: { kind: 'acl', put: simplePut('acl', (v, tx, c) => validateAcl(v, tx, c), (v) => v.subnetId) },
    host: {
      kind: 'host', deletable: 'host',
      put: (tx: Tx, v: Host, c: Caller, replace: boolean): Host => {
        if (replace && !tx.get('host', v.id)) throw notFound(`host/${v.id}`);
        return putHost(tx, v, c, replace, deps.hosts);
      },
    },
  } satisfies { [K in Kind]: KindSpec<K> };

  const required = <T>(v: T | undefined, field: string): T => {
    if (v === undefined) throw new HostnetError(Status.INVALID_ARGUMENT, { reason: 'FIELD_INVALID', field, message: `${field}: is required` });
    return v;
  };

  function crud<K extends Kind>(spec: KindSpec<K>, field: string) {
    const create = (v: ResourceOf<K> | undefined, ctx: CallContext) => {
      const c = caller(ctx);
      const r = write((tx) => spec.put(tx, required(v, field), c, false));
      return { value: r.result, revision: BigInt(r.revision) };
    };
    const update = (v: ResourceOf<K> | undefined, ctx: CallContext) => {
      const c = caller(ctx);
      const r = write((tx) => spec.put(tx, required(v, field), c, true));
      return { value: r.result, revision: BigInt(r.revision) };
    };
    const get = (key: string, ctx: CallContext): ResourceOf<K> => {
      const c = caller(ctx);
      const s = store.get(spec.kind, key);
      if (!s || !visible(store, c, spec.kind, s.value)) throw notFound(`${spec.kind}/${key}`);
      return s.value;
    };
    const list = (tenantId: string, ctx: CallContext) => {
      const c = caller(ctx);
      const revision = BigInt(store.revision());
      const items = store.list(spec.kind)
        .filter((s) => visible(store, c, spec.kind, s.value))
        .filter((s) => !tenantId || tenantOf(store, spec.kind, s.value) === tenantId)
        .map((s) => s.value);
      return { items, revision };
    };
    const remove = (key: string, ctx: CallContext) => {
      const c = caller(ctx);
      const r = write((tx) => {
        const s = tx.get(spec.kind, key);
        if (!s || !visible(tx, c, spec.kind, s.value)) throw notFound(`${spec.kind}/${key}`);
        if ((spec.kind === 'catalog' || spec.kind === 'tenant' || spec.kind === 'host') && c.role !== 'operator') {
          throw permissionDenied(`only operators delete ${spec.kind}s`, `${spec.kind}/${key}`);
        }
        if (spec.deletable) refuseIfReferenced(tx, spec.deletable, key);
        tx.delete(spec.kind, key);
      });
      return { revision: BigInt(r.revision) };
    };
    return { create, update, get, list, remove };
  }

  const t = crud(specs.tenant, 'tenant');
  const s = crud(specs.subnet, 'subnet');
  const k = crud(specs.catalog, 'network_catalog');
  const h = crud(specs.host, 'host');
  const o = crud(specs.object, 'network_object');
  const a = crud(specs.acl, 'acl');

  return {
    async createTenant(req, ctx) { const r = t.create(req.tenant, ctx); return { tenant: r.value, revision: r.revision }; },
    async getTenant(req, ctx) { return { tenant: t.get(req.id, ctx) }; },
    async listTenants(_req, ctx) { const r = t.list('', ctx); return { tenants: r.items, revision: r.revision }; },
    async updateTenant(req, ctx) { const r = t.update(req.tenant, ctx); return { tenant: r.value, revision: r.revision }; },
    async deleteTenant(req, ctx) { return t.remove(req.id, ctx); },

    async createSubnet(req, ctx) { const r = s.create(req.subnet, ctx); return { subnet: r.value, revision: r.revision }; },
    async getSubnet(req, ctx) { return { subnet: s.get(req.id, ctx) }; },
    async listSubnets(req, ctx) { const r = s.list(req.tenantId, ctx); return { subnets: r.items, revision: r.revision }; },
    async updateSubnet(req, ctx) { const r = s.update(req.subnet, ctx); return { subnet: r.value, revision: r.revision }; },
    async deleteSubnet(req, ctx) { return s.remove(req.id, ctx); },

    async createNetworkCatalog(req, ctx) { const r = k.create(req.networkCatalog, ctx); return { networkCatalog: r.value, revision: r.revision }; },
    async getNetworkCatalog(req, ctx) { return { networkCatalog: k.get(req.name, ctx) }; },
    async listNetworkCatalogs(_req, ctx) { const r = k.list('', ctx); return { networkCatalogs: r.items, revision: r.revision }; },
    async updateNetworkCatalog(req, ctx) { const r = k.update(req.networkCatalog, ctx); return { networkCatalog: r.value, revision: r.revision }; },
    async deleteNetworkCatalog(req, ctx) { return k.remove(req.name, ctx); },

    async createHost(req, ctx) { const r = h.create(req.host, ctx); return { host: r.value, revision: r.revision }; },
    async getHost(req, ctx) { return { host: h.get(req.id, ctx) }; },
    async listHosts(req, ctx) { const r = h.list(req.tenantId, ctx); return { hosts: r.items, revision: r.revision }; },
    async updateHost(req, ctx) { const r = h.update(req.host, ctx); return { host: r.value, revision: r.revision }; },
    async deleteHost(req, ctx) { return h.remove(req.id, ctx); },

    async createNetworkObject(req, ctx) { const r = o.create(req.networkObject, ctx); return { networkObject: r.value, revision: r.revision }; },
    async getNetworkObject(req, ctx) { return { networkObject: o.get(req.id, ctx) }; },
    async listNetworkObjects(req, ctx) { const r = o.list(req.tenantId, ctx); return { networkObjects: r.items, revision: r.revision }; },
    async updateNetworkObject(req, ctx) { const r = o.update(req.networkObject, ctx); return { networkObject: r.value, revision: r.revision }; },
    async deleteNetworkObject(req, ctx) { return o.remove(req.id, ctx); },

    async createAcl(req, ctx) { const r = a.create(req.acl, ctx); return { acl: r.value, revision: r.revision }; },
    async getAcl(req, ctx) { return { acl: a.get(req.subnetId, ctx) }; },
    async listAcls(req, ctx) { const r = a.list(req.tenantId, ctx); return { acls: r.items, revision: r.revision }; },
    async updateAcl(req, ctx) { const r = a.update(req.acl, ctx); return { acl: r.value, revision: r.revision }; },
    async deleteAcl(req, ctx) { return a.remove(req.subnetId, ctx); },

    async getRollout(req, ctx) {
      const c = caller(ctx);
      if (!deps.rollout) {
        throw new HostnetError(Status.UNIMPLEMENTED, { reason: 'UNIMPLEMENTED', message: 'this controller does not serve agents' });
      }
      const hosts = deps.rollout()
        .filter((r) => !req.hostId || r.hostId === req.hostId)
        .filter((r) => {
          const h = store.get('host', r.hostId);
          return h !== undefined && visible(store, c, 'host', h.value);
        })
        .map((r) => ({
          hostId: r.hostId, desiredVersion: r.desiredVersion, sentVersion: r.sentVersion, appliedVersion: r.appliedVersion,
          nackedVersion: r.nackedVersion, ...(r.nackError ? { nackError: r.nackError } : {}), connected: r.connected,
          updatedAt: timestampFromDate(r.updatedAt),
        }));
      return { hosts, revision: BigInt(store.revision()) };
    },
  };
}
