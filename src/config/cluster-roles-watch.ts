// `serve` in a cluster: the ClusterRoles the API server holds, kept in step through a list+watch,
// so a binding is judged by what its ClusterRole grants (and what the roles its aggregationRule
// selects grant) without a request to the API server on the admission path. The core reads them
// through EvaluationContext.roles; it never fetches.
//
// Namespaced Roles are not watched: no binding check reads one (whatever a Role grants stays in its
// namespace), and a cluster-wide read of every Role would be RBAC Portcullis does not need.
//
// As for the rules ConfigMap: ListWatch relists by itself on `410 Gone`, and any other error ends
// it, so this restarts it with the same capped, jittered backoff. Until a first list has arrived
// the cache is not ready, and neither is the server (`/readyz`).

import {
  KubeConfig,
  ListWatch,
  RbacAuthorizationV1Api,
  Watch,
  type V1ClusterRole,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { RoleIndex, type RoleLookup } from '../core/index.js';
import { DEFAULT_BACKOFF, RestartingListWatch, type Backoff } from './rules-configmap-watch.js';

export const CLUSTER_ROLES_PATH = '/apis/rbac.authorization.k8s.io/v1/clusterroles';

export interface ClusterRolesWatchOptions {
  kubeConfig: KubeConfig;
  log: Logger;
  backoff?: Partial<Backoff>;
}

export interface ClusterRolesWatch {
  readonly roles: RoleLookup;
  /** Undefined once a first list has arrived; otherwise why not (for `/readyz`). */
  notReady(): string | undefined;
  stop(): Promise<void>;
}

/** Starts listing at once. */
export function watchClusterRoles(options: ClusterRolesWatchOptions): ClusterRolesWatch {
  const watcher = new ClusterRolesWatcher(options);
  watcher.start();
  return watcher;
}

class ClusterRolesWatcher implements ClusterRolesWatch {
  readonly #index = new RoleIndex();
  readonly #log: Logger;
  readonly #watch: RestartingListWatch<V1ClusterRole>;
  #listed = false;
  #lastError: string | undefined;

  constructor(options: ClusterRolesWatchOptions) {
    this.#log = options.log.child({ watch: 'clusterroles' });
    const api = options.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
    const informer = new ListWatch<V1ClusterRole>(
      CLUSTER_ROLES_PATH,
      new Watch(options.kubeConfig),
      async () => {
        const list = await api.listClusterRole({});
        // A (re)list is the whole truth: roles deleted while the watch was down go with the old index.
        this.#index.clear();
        for (const role of list.items) this.#keep(role);
        if (!this.#listed) this.#log.info({ clusterRoles: this.#index.size }, 'ClusterRoles listed');
        this.#listed = true;
        this.#lastError = undefined;
        return list;
      },
      false,
    );
    informer.on('add', (role) => {
      this.#keep(role);
    });
    informer.on('update', (role) => {
      this.#keep(role);
    });
    informer.on('delete', (role) => {
      const name = role.metadata?.name;
      if (name !== undefined) this.#index.delete(name);
    });
    this.#watch = new RestartingListWatch(informer, {
      log: this.#log,
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
      failureMessage: 'ClusterRole watch failed; restarting it',
      onFailure: (error) => {
        this.#lastError = error;
      },
    });
  }

  get roles(): RoleLookup {
    return this.#index;
  }

  notReady(): string | undefined {
    if (this.#listed) return undefined;
    return `ClusterRoles not listed yet${this.#lastError === undefined ? '' : ` (${this.#lastError})`}`;
  }

  start(): void {
    this.#watch.start();
  }

  stop(): Promise<void> {
    return this.#watch.stop();
  }

  #keep(role: V1ClusterRole): void {
    if (!this.#index.add(role)) {
      this.#log.warn({ name: role.metadata?.name }, 'a ClusterRole could not be read; it is left out');
    }
  }
}
