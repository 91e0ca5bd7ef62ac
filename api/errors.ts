/** An error the API answers with its own status and `error.code`; anything else becomes a 500. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface FieldError {
  field: string;
  message: string;
}

export function notFound(what: string): ApiError {
  return new ApiError(404, 'not_found', `${what} not found`);
}

export function invalidFields(fields: FieldError[]): ApiError {
  const message = fields.length === 1 ? `${fields[0]?.field}: ${fields[0]?.message}` : 'the request is invalid';
  return new ApiError(422, 'validation_error', message, { fields });
}

export function invalidField(field: string, message: string): ApiError {
  return invalidFields([{ field, message }]);
}

export function missingField(field: string): ApiError {
  return new ApiError(422, 'missing_field', `${field} is required`, { field });
}

export function conflict(code: string, message: string, extra: Record<string, unknown> = {}): ApiError {
  return new ApiError(409, code, message, extra);
}
