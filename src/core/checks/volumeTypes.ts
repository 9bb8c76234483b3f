/*
 * Check: volumeTypes
 *
 * A volume type mounts something into the pod: a node directory (hostPath), a network file system
 * the node mounts with its own credentials (nfs, iscsi, rbd, …), a git checkout run by the kubelet
 * (gitRepo), a driver binary on the node (flexVolume). The Pod Security Standards' restricted level
 * allows only the types that come from the pod's own objects or from a PersistentVolumeClaim.
 *
 * Fields read: spec.volumes[*] (which volume source each sets).
 * Allowed: by default configMap, csi, downwardAPI, emptyDir, ephemeral, image,
 * persistentVolumeClaim, projected, secret; `allowed` replaces that list. Every other type is
 * denied, hostPath like the rest (which hostPath paths to allow is the `hostPath` check's
 * business), and so is a key that is not a volume type Kubernetes knows. A volume with no source
 * is what the API server turns into an emptyDir before admission, so it is judged as one.
 * `image` is allowed at every version, as pod-security-admission does (it added image to the 1.0
 * behaviour in Kubernetes 1.33 rather than a version of its own; the type exists from 1.31).
 * Versions: v1.0.
 * Params: allowed: [volume type, …] (default the restricted list above).
 */

import { defineCheck, type Finding } from '../check.js';
import { POD_TARGET, type PodView } from '../pod.js';
import { asObject, optList, optObject } from '../read.js';

/** Every volume source of core/v1 VolumeSource, by its JSON name. */
export const VOLUME_TYPES = [
  'awsElasticBlockStore',
  'azureDisk',
  'azureFile',
  'cephfs',
  'cinder',
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'fc',
  'flexVolume',
  'flocker',
  'gcePersistentDisk',
  'gitRepo',
  'glusterfs',
  'hostPath',
  'image',
  'iscsi',
  'nfs',
  'persistentVolumeClaim',
  'photonPersistentDisk',
  'portworxVolume',
  'projected',
  'quobyte',
  'rbd',
  'scaleIO',
  'secret',
  'storageos',
  'vsphereVolume',
] as const;

type VolumeType = (typeof VOLUME_TYPES)[number];

const KNOWN: ReadonlySet<string> = new Set(VOLUME_TYPES);

export const RESTRICTED_VOLUME_TYPES: readonly VolumeType[] = [
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'image',
  'persistentVolumeClaim',
  'projected',
  'secret',
];

interface Params {
  allowed: VolumeType[];
}

export const volumeTypes = defineCheck<Params, PodView>({
  id: 'volumeTypes',
  target: POD_TARGET,
  summary: "Volumes only of the allowed types (default: the restricted level's list; no hostPath).",
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      allowed: {
        type: 'array',
        uniqueItems: true,
        default: RESTRICTED_VOLUME_TYPES,
        items: { enum: VOLUME_TYPES },
      },
    },
  },
  versions: [
    {
      minimumVersion: 'v1.0',
      compile: (params) => {
        const allowed: ReadonlySet<string> = new Set(params.allowed);
        // The API server's default for a volume with no source.
        const noSourceAllowed = allowed.has('emptyDir');
        return (pod) => {
          const findings: Finding[] = [];
          optList(pod.spec, 'volumes', pod.path).forEach((raw, i) => {
            const path = [...pod.path, 'volumes', i];
            const volume = asObject(raw, path);
            const name = typeof volume['name'] === 'string' ? volume['name'] : '';
            // A source set to null is absent, as Kubernetes' own decoding treats it.
            const sources = Object.keys(volume).filter(
              (key) => key !== 'name' && volume[key] !== null && volume[key] !== undefined,
            );
            if (sources.length === 0 && !noSourceAllowed) {
              findings.push({
                path,
                message: `volume "${name}": a volume with no source is an emptyDir, which is not an allowed volume type`,
              });
            }
            for (const source of sources) {
              if (KNOWN.has(source)) optObject(volume, source, path);
              if (allowed.has(source)) continue;
              findings.push({
                path: [...path, source],
                message: KNOWN.has(source)
                  ? `volume "${name}": ${source} is not an allowed volume type`
                  : `volume "${name}": ${JSON.stringify(source)} is not a volume type Kubernetes knows`,
              });
            }
          });
          return findings;
        };
      },
    },
  ],
});
