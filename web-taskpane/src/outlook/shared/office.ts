/**
 * Office.js's callback APIs as promises. Every call takes the Office namespace it runs against (the real one loaded
 * from Microsoft's CDN, or a test's double), so the flows built on these are testable without a global.
 */

/** An Office call that failed: AsyncResult.error's name, code and message. */
export class OfficeError extends Error {
  constructor(
    readonly operation: string,
    readonly officeName: string | undefined,
    readonly code: number | undefined,
    message: string,
  ) {
    super(`${operation}: ${officeName ?? 'error'} ${code ?? ''} ${message}`.trim());
  }
}

/** Runs one AsyncResult-style call and settles with its value, or with an OfficeError when its status is failed. */
export function officeCall<T>(
  office: typeof Office,
  operation: string,
  start: (callback: (result: Office.AsyncResult<T>) => void) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    try {
      start((result) => {
        if (result.status === office.AsyncResultStatus.Succeeded) resolve(result.value);
        else reject(new OfficeError(operation, result.error?.name, result.error?.code, result.error?.message ?? ''));
      });
    } catch (e) {
      reject(e instanceof Error ? e : new Error(String(e)));
    }
  });
}

/** A recipient as every surface shows and sends it: the address, with the display name when Outlook has one. */
export function formatAddress(d: Office.EmailAddressDetails): string {
  const name = (d.displayName ?? '').trim();
  const address = (d.emailAddress ?? '').trim();
  if (!name || name.toLowerCase() === address.toLowerCase()) return address;
  return `"${name.replace(/["\\]/g, '')}" <${address}>`;
}

export interface ComposeRecipients {
  to: string[];
  cc: string[];
  bcc: string[];
}

/** The recipients as Outlook has them (display name and address), those without an address left out. */
export interface ComposeRecipientDetails {
  to: Office.EmailAddressDetails[];
  cc: Office.EmailAddressDetails[];
  bcc: Office.EmailAddressDetails[];
}

export async function recipientDetailsOf(office: typeof Office, item: Office.MessageCompose): Promise<ComposeRecipientDetails> {
  const get = (field: Office.Recipients, name: string) =>
    officeCall<Office.EmailAddressDetails[]>(office, `${name}.getAsync`, (cb) => field.getAsync(cb));
  const [to, cc, bcc] = await Promise.all([get(item.to, 'to'), get(item.cc, 'cc'), get(item.bcc, 'bcc')]);
  const list = (l: Office.EmailAddressDetails[]) => l.filter((d) => d.emailAddress);
  return { to: list(to), cc: list(cc), bcc: list(bcc) };
}

export async function recipientsOf(office: typeof Office, item: Office.MessageCompose): Promise<ComposeRecipients> {
  const r = await recipientDetailsOf(office, item);
  return { to: r.to.map(formatAddress), cc: r.cc.map(formatAddress), bcc: r.bcc.map(formatAddress) };
}

/** Whether this client has the requirement set (false where the API itself is missing, as in very old clients). */
export function supports(office: typeof Office, set: string, version: string): boolean {
  try {
    return office.context.requirements.isSetSupported(set, version);
  } catch {
    return false;
  }
}
