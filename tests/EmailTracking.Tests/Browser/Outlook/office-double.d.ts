// Types of office-double.js for the web-taskpane unit tests (Vitest imports the double from here).
export interface OfficeDoubleCall {
  api: string;
  args: unknown[];
}

export interface OfficeDoubleConfig {
  mode?: 'compose' | 'read';
  userEmail?: string;
  userName?: string;
  platform?: string;
  /** Requirement sets the client has, e.g. { Mailbox: '1.13', IdentityAPI: '1.3' }; a set not listed is unsupported. */
  requirementSets?: Record<string, string | null>;
  accessToken?: string;
  accessTokenError?: { code: number; name: string; message: string };
  /** Per API name (as recorded, e.g. 'body.setAsync'): answer Failed with this error. */
  failures?: Record<string, { name: string; message: string; code: number }>;
  /** Per API name: answer after this many milliseconds. */
  delays?: Record<string, number>;
  item?: {
    subject?: string;
    to?: { displayName: string; emailAddress: string }[];
    cc?: { displayName: string; emailAddress: string }[];
    bcc?: { displayName: string; emailAddress: string }[];
    from?: { displayName: string; emailAddress: string };
    bodyType?: 'html' | 'text';
    body?: string;
    cursor?: number;
    internetHeaders?: Record<string, string>;
    sessionData?: Record<string, string>;
    internetMessageId?: string;
    conversationId?: string;
    allHeaders?: string;
  };
}

export interface OfficeDoubleState {
  subject: string;
  body: string;
  bodyType: string;
  cursor: number;
  headers: Record<string, string>;
  sessionData: Record<string, string>;
  notifications: Record<string, { type: string; message?: string }>;
}

export interface OfficeDoubleInstance {
  Office: typeof Office;
  calls: OfficeDoubleCall[];
  state(): OfficeDoubleState;
  associated(): string[];
  send(name?: string, timeoutMs?: number): Promise<{ allowEvent?: boolean; errorMessage?: string }>;
  setRecipients(field: 'to' | 'cc' | 'bcc', list: { displayName: string; emailAddress: string }[]): void;
  /** The address of the Office dialog open now; null when none is. */
  dialogUrl(): string | null;
  /** The person closing the open dialog (DialogEventReceived, error 12006). */
  closeDialog(): void;
}

declare global {
  // eslint-disable-next-line no-var
  var OfficeDouble: { create(config?: OfficeDoubleConfig): OfficeDoubleInstance };
}
