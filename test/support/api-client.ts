import type OpenAPIBackend from 'openapi-backend';
import type { Operation } from 'openapi-backend';

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface RequestOptions {
  body?: unknown;
  /** Overrides the client's token; null sends no Authorization header. */
  token?: string | null;
  headers?: Record<string, string>;
}

/**
 * An HTTP client for the API under test that checks every response against openapi.yaml:
 * the status must be declared for the operation and the body must match its schema.
 */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    readonly token: string | null,
    private readonly contract: OpenAPIBackend,
  ) {}

  withToken(token: string | null): ApiClient {
    return new ApiClient(this.baseUrl, token, this.contract);
  }

  get<T = any>(path: string, options?: RequestOptions) {
    return this.request<T>('GET', path, options);
  }
  post<T = any>(path: string, body?: unknown, options?: RequestOptions) {
    return this.request<T>('POST', path, { ...options, body });
  }
  put<T = any>(path: string, body?: unknown, options?: RequestOptions) {
    return this.request<T>('PUT', path, { ...options, body });
  }
  patch<T = any>(path: string, body?: unknown, options?: RequestOptions) {
    return this.request<T>('PATCH', path, { ...options, body });
  }
  delete<T = any>(path: string, options?: RequestOptions) {
    return this.request<T>('DELETE', path, options);
  }

  /** `path` is relative to /api/v1 and may carry a query string. */
  async request<T = any>(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    const token = options.token === undefined ? this.token : options.token;
    const headers: Record<string, string> = { ...options.headers };
    if (token) headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${this.baseUrl}/api/v1${path}`, { method, headers, body });
    const text = await response.text();
    const isJson = (response.headers.get('content-type') ?? '').startsWith('application/json');
    const parsed = isJson && text ? JSON.parse(text) : text;
    this.check(method, path, response.status, response.headers, parsed);
    return { status: response.status, headers: response.headers, body: parsed as T, text };
  }

  private check(method: string, path: string, status: number, headers: Headers, body: unknown): void {
    const [pathname, query] = path.split('?');
    const operation = this.contract.matchOperation({ method: method === 'HEAD' ? 'GET' : method, path: `/api/v1${pathname}`, query: query ?? '', headers: {} }) as Operation | undefined;
    const where = `${method} ${path} -> ${status}`;
    if (!operation) {
      // Unknown routes must still answer with the error envelope.
      if (!(body && typeof body === 'object' && 'error' in body)) throw new Error(`${where}: unmatched route without an error envelope`);
      return;
    }
    const declared = Object.keys(operation.responses ?? {});
    if (!declared.includes(String(status)) && !declared.includes('default')) {
      throw new Error(`${where}: status ${status} is not declared for ${operation.operationId} (declared: ${declared.join(', ')}); body: ${JSON.stringify(body)}`);
    }
    if (status === 204 || method === 'HEAD') {
      if (body !== '') throw new Error(`${where}: a 204 or a HEAD answer must have no body`);
      return;
    }
    const contentType = headers.get('content-type') ?? '';
    if (typeof body === 'object') {
      const result = this.contract.validateResponse(body, operation, status);
      if (result.errors?.length) {
        throw new Error(`${where}: body does not match the contract for ${operation.operationId}: ${JSON.stringify(result.errors)}; body: ${JSON.stringify(body).slice(0, 2000)}`);
      }
    } else {
      // A text answer must be of a type the contract declares for it (HTML pages, the metrics' text/plain).
      const declaredTypes = Object.keys((operation.responses?.[String(status)] as { content?: object } | undefined)?.content ?? {});
      if (!declaredTypes.some((type) => contentType.startsWith(type))) throw new Error(`${where}: unexpected content type ${contentType} (declared: ${declaredTypes.join(', ')})`);
    }
  }
}
