{{/*
Names are fixed, as in manifests/: one Portcullis per cluster (the webhook configurations are
cluster-scoped), and the webhooks' matchConditions, the Role and the server's arguments spell them.
The namespace is the release's.
*/}}

{{/* metadata.labels of every object: manifests/' labels plus Helm's usual ones (never selectors). */}}
{{- define "portcullis.labels" -}}
{{- with .component }}app.kubernetes.io/component: {{ . }}
{{ end -}}
app.kubernetes.io/name: portcullis
app.kubernetes.io/part-of: portcullis
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end }}

{{/* The pods' labels: the Service, the NetworkPolicy, the budget and the webhooks' exclusion select them. */}}
{{- define "portcullis.selectorLabels" -}}
app.kubernetes.io/name: portcullis
app.kubernetes.io/component: server
{{- end }}

{{- define "portcullis.rulesConfigMap" -}}
{{- if and .Values.rules.inline .Values.rules.existingConfigMap }}
{{- fail "rules.inline and rules.existingConfigMap are alternatives: set one" }}
{{- end }}
{{- default "portcullis-rules" .Values.rules.existingConfigMap }}
{{- end }}

{{- define "portcullis.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The caBundle of every webhook, base64 PEM; empty where cert-manager injects it or none is given. */}}
{{- define "portcullis.caBundle" -}}
{{- if eq .Values.certificates.source "portcullis" }}
{{- required "certificates.caCrt is required with certificates.source=portcullis: run `portcullis certs --service portcullis --namespace <namespace> --out DIR`, then --set-file certificates.caCrt=DIR/ca.crt,certificates.tlsCrt=DIR/tls.crt,certificates.tlsKey=DIR/tls.key" .Values.certificates.caCrt | b64enc }}
{{- else if eq .Values.certificates.source "external" }}
{{- .Values.certificates.caBundle }}
{{- end }}
{{- end }}

{{/*
clientConfig of one webhook (argument: dict root, path). The Service in the cluster, or, for
development, webhooks.url + path.
*/}}
{{- define "portcullis.clientConfig" -}}
{{- $caBundle := include "portcullis.caBundle" .root }}
{{- if .root.Values.webhooks.url }}
{{- if not (regexMatch "^https://[^/?#]+$" .root.Values.webhooks.url) }}
{{- fail (printf "webhooks.url must be an https origin without a path (each webhook adds its own): %s" .root.Values.webhooks.url) }}
{{- end }}
url: {{ printf "%s%s" .root.Values.webhooks.url .path }}
{{- else }}
service:
  namespace: {{ .root.Release.Namespace }}
  name: portcullis
  path: {{ .path }}
  port: 443
{{- end }}
{{- if $caBundle }}
caBundle: {{ $caBundle }}
{{- end }}
{{- end }}

{{/* The webhooks' namespaceSelector: every namespace but the excluded ones. */}}
{{- define "portcullis.namespaceSelector" -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values: {{ toJson .Values.webhooks.excludedNamespaces }}
{{- end }}

{{/* workloads.portcullis.io's namespaceSelector: also not the release's namespace, which
workloads-own-namespace.portcullis.io judges. */}}
{{- define "portcullis.namespaceSelectorBesidesOwn" -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values: {{ toJson (uniq (append .Values.webhooks.excludedNamespaces .Release.Namespace)) }}
{{- end }}

{{/*
The rules of the workload webhook pair (argument: dict rbacScope): workloads.portcullis.io sends
roles and bindings of both scopes ("*"), workloads-own-namespace.portcullis.io the namespaced ones.
*/}}
{{- define "portcullis.workloadRules" -}}
- apiGroups: ['']
  apiVersions: [v1]
  operations: [CREATE, UPDATE]
  resources: [pods, podtemplates, replicationcontrollers]
  scope: Namespaced
# `kubectl debug` adds a container to a running pod through this subresource: judged by the
# pod rules, and by podExec rules as a session (its command, image, user).
- apiGroups: ['']
  apiVersions: [v1]
  operations: [UPDATE]
  resources: [pods/ephemeralcontainers]
  scope: Namespaced
- apiGroups: [apps]
  apiVersions: [v1]
  operations: [CREATE, UPDATE]
  resources: [deployments, daemonsets, statefulsets, replicasets]
  scope: Namespaced
- apiGroups: [batch]
  apiVersions: [v1]
  operations: [CREATE, UPDATE]
  resources: [jobs, cronjobs]
  scope: Namespaced
# kubectl exec, attach and port-forward (and kubectl cp, an exec of tar), for podExec rules.
- apiGroups: ['']
  apiVersions: [v1]
  operations: [CONNECT]
  resources: [pods/exec, pods/attach, pods/portforward]
  scope: Namespaced
# ClusterRoles and ClusterRoleBindings are cluster-scoped: the namespaceSelector never skips
# them, and "Namespaced" never sends them. The API server writes its bootstrap ClusterRoles through
# here at every start.
- apiGroups: [rbac.authorization.k8s.io]
  apiVersions: [v1]
  operations: [CREATE, UPDATE]
  resources: [rolebindings, clusterrolebindings, roles, clusterroles]
  scope: {{ .rbacScope | squote }}
{{- end }}

{{/*
The one kind of request the workload webhooks let through unjudged: the ReplicaSet controller
creating Portcullis' own pod in its namespace. Why, and why nothing wider: the comments in
manifests/base/50-validatingwebhookconfiguration.yaml and docs/operations.md.
*/}}
{{- define "portcullis.notOwnPod" -}}
- name: not-portcullis-own-pod
  expression: >-
    !(request.namespace == '{{ .Release.Namespace }}' &&
    request.resource.group == '' && request.resource.resource == 'pods' &&
    !has(request.subResource) && request.operation == 'CREATE' &&
    request.userInfo.username == 'system:serviceaccount:kube-system:replicaset-controller' &&
    has(object.metadata.labels) &&
    'app.kubernetes.io/name' in object.metadata.labels &&
    object.metadata.labels['app.kubernetes.io/name'] == 'portcullis')
{{- end }}
