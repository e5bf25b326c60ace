// The error vocabulary's types under strict (checked by `npm run typecheck`, never run): ErrorCode
// is closed, so an unknown code does not compile, and a switch over it can be exhaustive.
import { ProtocolError, SwitchboardError, type CloseInfo, type ErrorCode, type ErrorKind } from 'switchboard';

new SwitchboardError('ERR_LINE_TOO_LONG', 'a known code');
new SwitchboardError('ECONNREFUSED', 'a system code passes as Node gives it');
// @ts-expect-error ERR_NO_SUCH_RULE is not a code
new SwitchboardError('ERR_NO_SUCH_RULE', 'an unknown code');
// @ts-expect-error a code is not any string
new ProtocolError('err_protocol', 'lower case is not a code');
const anyString: string = 'ERR_PROTOCOL';
// @ts-expect-error a string is not an ErrorCode without a check (isErrorCode)
new SwitchboardError(anyString, 'unchecked');

/** Whose fault, exhaustively: a new kind would make this function not compile. */
export function whose(err: SwitchboardError): string {
  const kind: ErrorKind = err.kind;
  switch (kind) {
    case 'local': return 'my bug';
    case 'remote': return 'their input';
    case 'system': return 'the network or the machine';
    default: {
      const never: never = kind;
      return never;
    }
  }
}

export function describe(info: CloseInfo): string {
  const code: ErrorCode | undefined = info.error?.code;
  // @ts-expect-error ERR_LINE_TOO_LON is misspelt: the comparison has no overlap
  if (code === 'ERR_LINE_TOO_LON') return 'never';
  return code === 'ERR_LINE_TOO_LONG' ? `line too long (${info.code})` : String(code);
}
