// What the audit record says of a session into a pod: the keys `addSessionAnnotations` writes for
// exec (the CONNECT's options) and for kubectl debug (each ephemeral container the UPDATE adds).

import t from 'tap';
import { addSessionAnnotations } from '../../src/audit/event.js';
import type { AdmissionRequest } from '../../src/core/index.js';
import {
  connectRequest,
  debugContainer,
  debugRequest,
  execOptions,
  pod,
  requestFor,
} from '../helpers/requests.js';

const annotationsOf = (request: AdmissionRequest): Record<string, string> => {
  const annotations: Record<string, string> = {};
  addSessionAnnotations(annotations, request, 'portcullis.io/');
  return annotations;
};

t.test('each kind of session, as recorded', async (t) => {
  const rows: [name: string, request: AdmissionRequest, annotations: Record<string, string>][] = [
    [
      'exec',
      connectRequest('exec', execOptions(['sh', '-c', 'id; whoami'], { stdin: true })),
      {
        'portcullis.io/command': "sh -c 'id; whoami'",
        'portcullis.io/container': 'app',
        'portcullis.io/stdin': 'true',
        'portcullis.io/tty': 'false',
      },
    ],
    [
      'kubectl debug -it --image=busybox --target=app -- cat /x',
      debugRequest([debugContainer('dbg', ['cat', '/x'], { stdin: true, tty: true })]),
      {
        'portcullis.io/command': 'cat /x',
        'portcullis.io/container': 'dbg',
        'portcullis.io/image': 'busybox',
        'portcullis.io/stdin': 'true',
        'portcullis.io/tty': 'true',
      },
    ],
    [
      'debug without a command: the entrypoint, unseen',
      debugRequest([debugContainer('dbg', undefined)]),
      {
        'portcullis.io/command': '<entrypoint>',
        'portcullis.io/container': 'dbg',
        'portcullis.io/image': 'busybox',
        'portcullis.io/stdin': 'false',
        'portcullis.io/tty': 'false',
      },
    ],
    [
      'debug with args only: the entrypoint, then the args',
      debugRequest([debugContainer('dbg', undefined, { args: ['<entrypoint>', 'x y'] })]),
      {
        'portcullis.io/command': "<entrypoint> '<entrypoint>' 'x y'",
        'portcullis.io/container': 'dbg',
        'portcullis.io/image': 'busybox',
        'portcullis.io/stdin': 'false',
        'portcullis.io/tty': 'false',
      },
    ],
    [
      'two containers added at once: the second suffixed, and a count',
      debugRequest([debugContainer('a', ['ls']), debugContainer('b', ['ps'], { image: 'alpine' })], {
        before: [debugContainer('old', ['cat', '/x'])],
      }),
      {
        'portcullis.io/command': 'ls',
        'portcullis.io/container': 'a',
        'portcullis.io/image': 'busybox',
        'portcullis.io/stdin': 'false',
        'portcullis.io/tty': 'false',
        'portcullis.io/command.2': 'ps',
        'portcullis.io/container.2': 'b',
        'portcullis.io/image.2': 'alpine',
        'portcullis.io/stdin.2': 'false',
        'portcullis.io/tty.2': 'false',
        'portcullis.io/sessions': '2',
      },
    ],
    [
      'a plain pod update records no session',
      requestFor('Pod', pod(), { operation: 'UPDATE', oldObject: pod() }),
      {},
    ],
    [
      'an ephemeralcontainers update that adds none records none',
      debugRequest([], { before: [debugContainer('old', ['ls'])] }),
      {},
    ],
  ];
  for (const [name, request, annotations] of rows) t.same(annotationsOf(request), annotations, name);
});
