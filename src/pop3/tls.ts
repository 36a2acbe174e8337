import { createSecureContext, type SecureContext, type TlsOptions } from 'node:tls';

export interface TlsCertificate {
  /** PEM private key. */
  readonly key: string | Buffer;
  /** PEM certificate chain. */
  readonly cert: string | Buffer;
}

export interface Pop3TlsOptions extends TlsCertificate {
  /**
   * More certificates, chosen by the name the client asks for (SNI): keys are host names, or
   * `*.example.com` for one level of subdomains. Clients that send no name, or an unknown one,
   * get the default certificate above.
   */
  readonly sni?: Readonly<Record<string, TlsCertificate>>;
}

/** TLS 1.2 or later only (RFC 8314 section 4.1 recommends 1.2 as the floor; 1.0 and 1.1 are deprecated, RFC 8996). */
export const MIN_TLS_VERSION = 'TLSv1.2';

/**
 * The server's certificates as secure contexts. {@link update} swaps them all at once (a reload on
 * SIGHUP): handshakes that start afterwards use the new ones, sessions already encrypted go on.
 */
export class TlsContexts {
  #default!: SecureContext;
  #byName = new Map<string, SecureContext>();
  #certificate!: TlsCertificate;

  constructor(options: Pop3TlsOptions) {
    this.update(options);
  }

  /** Builds every context first, so a bad key or certificate throws and changes nothing. */
  update(options: Pop3TlsOptions): void {
    const make = (c: TlsCertificate): SecureContext =>
      createSecureContext({ key: c.key, cert: c.cert, minVersion: MIN_TLS_VERSION });
    const fallback = make(options);
    const byName = new Map<string, SecureContext>();
    for (const [name, certificate] of Object.entries(options.sni ?? {}))
      byName.set(name.toLowerCase(), make(certificate));
    this.#default = fallback;
    this.#byName = byName;
    this.#certificate = { key: options.key, cert: options.cert };
  }

  get default(): SecureContext {
    return this.#default;
  }

  /** The context for an SNI name: exact match, then `*.parent`, then the default. */
  forName(servername: string): SecureContext {
    const name = servername.toLowerCase();
    const exact = this.#byName.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    return (dot === -1 ? undefined : this.#byName.get(`*${name.slice(dot)}`)) ?? this.#default;
  }

  /** Options for a server-side TLSSocket using these contexts. */
  serverOptions(): TlsOptions {
    return {
      ...this.#certificate,
      secureContext: this.#default,
      minVersion: MIN_TLS_VERSION,
      SNICallback: (servername, callback) => {
        callback(null, this.forName(servername));
      },
    };
  }
}
