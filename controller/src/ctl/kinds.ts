// The resource kinds as hostnetctl names them, with their messages, keys,
// AdminService calls and table columns.
import type { DescMessage, Message } from '@bufbuild/protobuf';
import type { Metadata } from '@grpc/grpc-js';
import type { ServiceClient } from '../../../proto/grpc/client.js';
import type { AdminService, Resource } from '../../../proto/gen/hostnet/v1/admin_pb.js';
import {
  type Acl, AclSchema, type Host, HostSchema, type NetworkCatalog, NetworkCatalogSchema, type NetworkObject, NetworkObjectSchema,
  type Subnet, SubnetSchema, type Switch, SwitchSchema, type Tenant, TenantSchema,
} from '../../../proto/gen/hostnet/v1/resources_pb.js';

export type AdminClient = ServiceClient<typeof AdminService extends { method: infer M } ? M : never>;
type Opts = { metadata: Metadata };

export interface KindInfo {
  /** The name in YAML documents (`kind: Tenant`). */
  readonly name: string;
  /** Names accepted on the command line (singular and plural, lower case). */
  readonly aliases: readonly string[];
  readonly schema: DescMessage;
  /** The case of the Resource oneof (Apply) that holds this kind. */
  readonly oneof: NonNullable<Resource['kind']['case']>;
  readonly keyOf: (m: Message) => string;
  readonly columns: readonly [string, (m: Message) => string][];
  create(c: AdminClient, m: Message, o: Opts): Promise<unknown>;
  update(c: AdminClient, m: Message, o: Opts): Promise<unknown>;
  get(c: AdminClient, key: string, o: Opts): Promise<Message | undefined>;
  list(c: AdminClient, o: Opts): Promise<Message[]>;
  delete(c: AdminClient, key: string, o: Opts): Promise<unknown>;
}

export const KINDS: readonly KindInfo[] = [
  {
    name: 'Tenant', oneof: 'tenant', aliases: ['tenant', 'tenants'], schema: TenantSchema, keyOf: (m) => (m as Tenant).id,
    columns: [['ID', (m) => (m as Tenant).id], ['NAME', (m) => (m as Tenant).name]],
    create: (c, m, o) => c.createTenant({ tenant: m as Tenant }, o), update: (c, m, o) => c.updateTenant({ tenant: m as Tenant }, o),
    get: async (c, k, o) => (await c.getTenant({ id: k }, o)).tenant, list: async (c, o) => (await c.listTenants({}, o)).tenants,
    delete: (c, k, o) => c.deleteTenant({ id: k }, o),
  },
  {
    name: 'Subnet', oneof: 'subnet', aliases: ['subnet', 'subnets'], schema: SubnetSchema, keyOf: (m) => (m as Subnet).id,
    columns: [['ID', (m) => (m as Subnet).id], ['TENANT', (m) => (m as Subnet).tenantId], ['PREFIX', (m) => [(m as Subnet).prefixV4, (m as Subnet).prefixV6].filter(Boolean).join(',')], ['NAME', (m) => (m as Subnet).name]],
    create: (c, m, o) => c.createSubnet({ subnet: m as Subnet }, o), update: (c, m, o) => c.updateSubnet({ subnet: m as Subnet }, o),
    get: async (c, k, o) => (await c.getSubnet({ id: k }, o)).subnet, list: async (c, o) => (await c.listSubnets({}, o)).subnets,
    delete: (c, k, o) => c.deleteSubnet({ id: k }, o),
  },
  {
    name: 'NetworkCatalog', oneof: 'networkCatalog', aliases: ['catalog', 'catalogs', 'networkcatalog', 'networkcatalogs'], schema: NetworkCatalogSchema, keyOf: (m) => (m as NetworkCatalog).name,
    columns: [['NAME', (m) => (m as NetworkCatalog).name], ['NETWORKS', (m) => (m as NetworkCatalog).networks.map((n) => n.name).join(',')]],
    create: (c, m, o) => c.createNetworkCatalog({ networkCatalog: m as NetworkCatalog }, o), update: (c, m, o) => c.updateNetworkCatalog({ networkCatalog: m as NetworkCatalog }, o),
    get: async (c, k, o) => (await c.getNetworkCatalog({ name: k }, o)).networkCatalog, list: async (c, o) => (await c.listNetworkCatalogs({}, o)).networkCatalogs,
    delete: (c, k, o) => c.deleteNetworkCatalog({ name: k }, o),
  },
  {
    name: 'Host', oneof: 'host', aliases: ['host', 'hosts'], schema: HostSchema, keyOf: (m) => (m as Host).id,
    columns: [['ID', (m) => (m as Host).id], ['SUBNET', (m) => (m as Host).subnetId], ['CATALOG', (m) => (m as Host).catalog], ['ASN', (m) => String((m as Host).asn)],
      ['SWITCH-PORTS', (m) => (m as Host).switchPorts.map((p) => `${p.switchName}/${p.port}`).join(',') || '-'], ['ADDRESSES', (m) => [...(m as Host).addresses, ...(m as Host).publicAddresses].join(',')]],
    create: (c, m, o) => c.createHost({ host: m as Host }, o), update: (c, m, o) => c.updateHost({ host: m as Host }, o),
    get: async (c, k, o) => (await c.getHost({ id: k }, o)).host, list: async (c, o) => (await c.listHosts({}, o)).hosts,
    delete: (c, k, o) => c.deleteHost({ id: k }, o),
  },
  {
    name: 'Object', oneof: 'networkObject', aliases: ['object', 'objects', 'networkobject', 'networkobjects'], schema: NetworkObjectSchema, keyOf: (m) => (m as NetworkObject).id,
    columns: [['ID', (m) => (m as NetworkObject).id], ['TENANT', (m) => (m as NetworkObject).tenantId], ['PREFIXES', (m) => String((m as NetworkObject).prefixes.length)], ['DESCRIPTION', (m) => (m as NetworkObject).description]],
    create: (c, m, o) => c.createNetworkObject({ networkObject: m as NetworkObject }, o), update: (c, m, o) => c.updateNetworkObject({ networkObject: m as NetworkObject }, o),
    get: async (c, k, o) => (await c.getNetworkObject({ id: k }, o)).networkObject, list: async (c, o) => (await c.listNetworkObjects({}, o)).networkObjects,
    delete: (c, k, o) => c.deleteNetworkObject({ id: k }, o),
  },
  {
    name: 'Acl', oneof: 'acl', aliases: ['acl', 'acls'], schema: AclSchema, keyOf: (m) => (m as Acl).subnetId,
    columns: [['SUBNET', (m) => (m as Acl).subnetId], ['RULES', (m) => String((m as Acl).rules.length)]],
    create: (c, m, o) => c.createAcl({ acl: m as Acl }, o), update: (c, m, o) => c.updateAcl({ acl: m as Acl }, o),
    get: async (c, k, o) => (await c.getAcl({ subnetId: k }, o)).acl, list: async (c, o) => (await c.listAcls({}, o)).acls,
    delete: (c, k, o) => c.deleteAcl({ subnetId: k }, o),
  },
  {
    name: 'Switch', oneof: 'switch', aliases: ['switch', 'switches', 'tor', 'tors'], schema: SwitchSchema, keyOf: (m) => (m as Switch).name,
    columns: [['NAME', (m) => (m as Switch).name], ['ASN', (m) => String((m as Switch).asn)], ['ROUTER-ID', (m) => (m as Switch).routerId],
      ['PORTS', (m) => String((m as Switch).ports.length)], ['POOL-VLAN', (m) => String((m as Switch).poolVlan)]],
    create: (c, m, o) => c.createSwitch({ switch: m as Switch }, o), update: (c, m, o) => c.updateSwitch({ switch: m as Switch }, o),
    get: async (c, k, o) => (await c.getSwitch({ name: k }, o)).switch, list: async (c, o) => (await c.listSwitches({}, o)).switches,
    delete: (c, k, o) => c.deleteSwitch({ name: k }, o),
  },
];

export function kindByAlias(alias: string): KindInfo | undefined {
  const a = alias.toLowerCase();
  return KINDS.find((k) => k.aliases.includes(a));
}

export const kindByName = (name: string): KindInfo | undefined => KINDS.find((k) => k.name === name);
