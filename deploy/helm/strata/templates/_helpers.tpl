{{/* The prefix of every object name. */}}
{{- define "strata.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-strata" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the pods of one component: pass (dict "ctx" $ "component" "metadata"). */}}
{{- define "strata.selectorLabels" -}}
app.kubernetes.io/name: strata
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Every label of an object of one component. */}}
{{- define "strata.labels" -}}
{{ include "strata.selectorLabels" . }}
app.kubernetes.io/part-of: strata
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version }}
{{- end -}}

{{/* The label of the Services that ServiceMonitor scrapes. */}}
{{- define "strata.metricsLabel" -}}
strata-mail.github.io/metrics: "true"
{{- end -}}

{{- define "strata.image" -}}
{{ printf "%s:%s" .repository .tag | quote }}
{{- end -}}

{{/* The pod securityContext of every pod: non-root, seccomp RuntimeDefault. */}}
{{- define "strata.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
runAsGroup: {{ .Values.runAsGroup }}
fsGroup: {{ .Values.runAsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The securityContext of every container. */}}
{{- define "strata.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
runAsGroup: {{ .Values.runAsGroup }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container ports, the same as deploy/compose.yaml's. */}}
{{- define "strata.port.imap" -}}1143{{- end -}}
{{- define "strata.port.imaps" -}}1993{{- end -}}
{{- define "strata.port.lmtp" -}}2424{{- end -}}
{{- define "strata.port.managesieve" -}}4190{{- end -}}
{{- define "strata.port.grpc" -}}7100{{- end -}}
{{- define "strata.port.raft" -}}7300{{- end -}}
{{- define "strata.port.metrics" -}}9464{{- end -}}
{{- define "strata.port.etcdClient" -}}2379{{- end -}}
{{- define "strata.port.etcdPeer" -}}2380{{- end -}}

{{/* Comma-separated etcd endpoints (host:port) for --etcd. */}}
{{- define "strata.etcdEndpoints" -}}
{{- if eq .Values.etcd.mode "external" -}}
{{- join "," .Values.etcd.endpoints -}}
{{- else -}}
{{- $name := printf "%s-etcd" (include "strata.fullname" .) -}}
{{- $eps := list -}}
{{- range $i := until (int .Values.etcd.bundled.replicas) -}}
{{- $eps = append $eps (printf "%s-%d.%s.%s.svc:%s" $name $i $name $.Release.Namespace (include "strata.port.etcdClient" $)) -}}
{{- end -}}
{{- join "," $eps -}}
{{- end -}}
{{- end -}}

{{/* The S3 flags and environment of the processes that use the blob store. */}}
{{- define "strata.s3Args" -}}
- --blob
- s3
- --s3-endpoint
- {{ .Values.s3.endpoint | quote }}
- --s3-bucket
- {{ .Values.s3.bucket | quote }}
- --s3-region
- {{ .Values.s3.region | quote }}
{{- with .Values.s3.prefix }}
- --s3-prefix
- {{ . | quote }}
{{- end }}
{{- if .Values.s3.insecure }}
- --s3-insecure
{{- end }}
{{- if .Values.s3.pathStyle }}
- --s3-path-style
{{- end }}
{{- end -}}

{{- define "strata.s3Env" -}}
- name: STRATA_S3_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.s3.existingSecret }}
      key: {{ .Values.s3.accessKeyKey }}
- name: STRATA_S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.s3.existingSecret }}
      key: {{ .Values.s3.secretKeyKey }}
{{- end -}}

{{/* The cluster mTLS flags; the Secret is mounted at /cluster-tls. */}}
{{- define "strata.clusterTLSArgs" -}}
- --cluster-tls-ca
- /cluster-tls/ca.crt
- --cluster-tls-cert
- /cluster-tls/tls.crt
- --cluster-tls-key
- /cluster-tls/tls.key
{{- end -}}

{{/* Pod anti-affinity of one component: pass (dict "ctx" $ "component" "metadata" "hard" true). */}}
{{- define "strata.antiAffinity" -}}
podAntiAffinity:
{{- if .hard }}
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- include "strata.selectorLabels" . | nindent 10 }}
{{- else }}
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "strata.selectorLabels" . | nindent 12 }}
{{- end }}
{{- end -}}

{{/* The metadata group's PodDisruptionBudget: never fewer than a quorum (n/2+1) of n voters
     up, and at most one voter evicted at a time, so a 5-voter group keeps a spare. */}}
{{- define "strata.metadataMaxUnavailable" -}}
{{- $n := int .Values.metadata.replicas -}}
{{- $quorum := add (div $n 2) 1 -}}
{{- min 1 (sub $n $quorum) -}}
{{- end -}}

{{/* Frontend termination grace: preStop wait + drain + 15 s for the process to exit. */}}
{{- define "strata.frontendGrace" -}}
{{- add .Values.frontend.preStopSeconds .Values.frontend.drainTimeoutSeconds 15 -}}
{{- end -}}

{{/* NetworkPolicy: the ingress rule of the metrics port. */}}
{{- define "strata.metricsIngress" -}}
- ports:
    - port: metrics
      protocol: TCP
  {{- with .Values.networkPolicy.metricsFrom }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
{{- define "strata.componentPeer" -}}
- podSelector:
    matchLabels:
      app.kubernetes.io/name: strata
      app.kubernetes.io/instance: {{ .ctx.Release.Name }}
      app.kubernetes.io/component: {{ .component }}
{{- end -}}
