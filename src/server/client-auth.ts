// `serve --client-ca FILE [--client-name NAME…]`: only a caller holding a certificate from that CA
// (the API server, given a kubeConfigFile with a client certificate in its AdmissionConfiguration)
// may ask for a decision. Verified by TLS during the handshake, enforced per route: the TLS server
// asks every client for a certificate but lets the handshake finish without one, so the kubelet's
// probes and Prometheus still reach /healthz, /readyz and /metrics, while /validate and /mutate
// refuse an unauthenticated caller before reading its body — recorded as refused, never under the
// user its review claims, since that review is never read.

import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

export interface ClientAuthOptions {
  /** PEM bundle of the CAs whose client certificates are accepted. */
  ca: string;
  /** When not empty, the certificate's subject CN or a DNS SAN must be one of these. */
  names: readonly string[];
}

export type ClientCheck =
  { ok: true; client: string } | { ok: false; statusCode: 401 | 403; code: string; message: string };

/** The options the TLS server needs for it; also passed on every certificate swap (setSecureContext). */
export function clientAuthTlsOptions(options: ClientAuthOptions): {
  ca: string;
  requestCert: true;
  rejectUnauthorized: false;
} {
  return { ca: options.ca, requestCert: true, rejectUnauthorized: false };
}

/** Whether the text holds at least one CA certificate, or why not. */
export function checkClientCa(pem: string): { ok: true; count: number } | { ok: false; error: string } {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return { ok: false, error: 'holds no PEM certificate' };
  for (const block of blocks) {
    try {
      const cert = new X509Certificate(block);
      if (!cert.ca) return { ok: false, error: `certificate "${cert.subject}" is not a CA certificate` };
    } catch (err) {
      return {
        ok: false,
        error: `cannot read a certificate: ${err instanceof Error ? err.message : String(err)}`,
      };
    }
  }
  return { ok: true, count: blocks.length };
}

/** Who the verified client is (its CN, else its first DNS SAN), or why it is refused. */
export function checkClient(socket: TLSSocket, options: ClientAuthOptions): ClientCheck {
  const peer = socket.getPeerCertificate();
  // An empty object when the client sent no certificate.
  if (peer.raw === undefined) {
    return {
      ok: false,
      statusCode: 401,
      code: 'PORTCULLIS_ERR_NO_CLIENT_CERT',
      message: 'a client certificate is required: this webhook admits only the API server',
    };
  }
  if (!socket.authorized) {
    return {
      ok: false,
      statusCode: 401,
      code: 'PORTCULLIS_ERR_CLIENT_CERT_UNTRUSTED',
      message: `the client certificate is not trusted (${String(socket.authorizationError)}): this webhook admits only the API server`,
    };
  }
  const names = certificateNames(peer.subject.CN, peer.subjectaltname);
  const client = names[0] ?? '';
  if (options.names.length > 0 && !names.some((n) => options.names.includes(n))) {
    return {
      ok: false,
      statusCode: 403,
      code: 'PORTCULLIS_ERR_CLIENT_NOT_ALLOWED',
      message: `client "${client}" is not among the clients allowed to call this webhook`,
    };
  }
  return { ok: true, client };
}

/** The subject CN (a string, or several when repeated) and the DNS SANs, in that order. */
function certificateNames(cn: string | string[] | undefined, subjectAltName: string | undefined): string[] {
  const names = cn === undefined ? [] : Array.isArray(cn) ? [...cn] : [cn];
  for (const entry of (subjectAltName ?? '').split(', ')) {
    if (entry.startsWith('DNS:')) names.push(entry.slice(4));
  }
  return names;
}
