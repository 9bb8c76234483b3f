// The server with the ClusterRoles `serve --rules-configmap` watches: not ready until they are
// listed, and /validate judges bindings by the roles as they are now. The watch itself (list, watch,
// restart) runs against a real kube-apiserver in test/e2e/rbac.test.ts; here a stand-in for it
// that the test fills, so each step is exact.

import t from 'tap';
import type { ClusterRolesWatch } from '../../src/config/cluster-roles-watch.js';
import { RoleIndex } from '../../src/core/index.js';
import { admissionResponse, localhostCertificates, startServer } from '../helpers/server.js';

const RBAC = 'rbac.authorization.k8s.io';
const certificates = await localhostCertificates();

class StandInWatch implements ClusterRolesWatch {
  readonly roles = new RoleIndex();
  listed = false;
  notReady(): string | undefined {
    return this.listed ? undefined : 'ClusterRoles not listed yet (HTTP 403: clusterroles is forbidden)';
  }
  async stop(): Promise<void> {}
}

function bindingReview(roleName: string) {
  const object = {
    apiVersion: `${RBAC}/v1`,
    kind: 'ClusterRoleBinding',
    metadata: { name: 'x' },
    roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: roleName },
    subjects: [{ apiGroup: RBAC, kind: 'User', name: 'mallory' }],
  };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'b-1',
      kind: { group: RBAC, version: 'v1', kind: 'ClusterRoleBinding' },
      resource: { group: RBAC, version: 'v1', resource: 'clusterrolebindings' },
      name: 'x',
      operation: 'CREATE',
      userInfo: { username: 'alice' },
      object,
    },
  };
}

t.test(
  'not ready until the ClusterRoles are listed; bindings judged by the roles as they are now',
  async (t) => {
    const watch = new StandInWatch();
    const srv = await startServer({ certificates, clusterRoles: watch });
    t.teardown(() => srv.close());

    const notReady = await srv.request('/readyz');
    t.equal(notReady.status, 503);
    t.match(notReady.json(), {
      reasons: ['ClusterRoles not listed yet (HTTP 403: clusterroles is forbidden)'],
    });

    watch.listed = true;
    t.equal((await srv.request('/readyz')).status, 200, 'ready once listed');

    const before = admissionResponse(await srv.request('/validate', { body: bindingReview('god') }));
    t.equal(before.allowed, true, 'a role not in the cluster is not guessed…');
    t.same(before.warnings, [
      'ClusterRoleBinding "x": roleRef ClusterRole "god" is not known to Portcullis (not in the cluster, the input or the bootstrap policy), so what it grants was not judged [no-cluster-admin-binding]',
    ]);

    watch.roles.add({
      apiVersion: `${RBAC}/v1`,
      kind: 'ClusterRole',
      metadata: { name: 'god' },
      rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
    });
    const after = admissionResponse(await srv.request('/validate', { body: bindingReview('god') }));
    t.equal(after.allowed, false, '…and once the watch has it, the binding is judged by it');
    t.equal(
      after.status?.message,
      'ClusterRoleBinding "x": roleRef ClusterRole "god" grants * on * (cluster-admin in effect) to User "mallory" [no-cluster-admin-binding]',
    );

    watch.roles.delete('god');
    const deleted = admissionResponse(await srv.request('/validate', { body: bindingReview('god') }));
    t.equal(deleted.allowed, true, 'a deleted role grants nothing any more');
  },
);

t.test('without the watch (serve --rules FILE), the bootstrap roles are still known', async (t) => {
  const srv = await startServer({ certificates });
  t.teardown(() => srv.close());
  t.equal((await srv.request('/readyz')).status, 200);
  const admin = admissionResponse(await srv.request('/validate', { body: bindingReview('admin') }));
  t.equal(
    admin.status?.message,
    'ClusterRoleBinding "x": roleRef ClusterRole "admin" grants get on secrets and create on pods in every namespace to User "mallory" [no-cluster-admin-binding]',
  );
});
