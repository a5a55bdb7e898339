/** The server's answers as the add-in reads them (JSON, camelCase, kebab-case enums). */

/** GET /api/outlook/config (anonymous): what MSAL needs for nested app authentication. */
export interface OutlookConfig {
  clientId: string;
  authority: string;
  scopes: string[];
}

/** GET /api/outlook/me. */
export interface OutlookMe {
  email: string;
  plan: 'solo' | 'team';
  trackByDefault: boolean;
  contentAllowed: boolean;
  maxRecipients: number;
}

/** POST /api/messages (MessagesApi.RegisterRequest). */
export interface RegisterRequest {
  from: string;
  subject: string;
  to: string[];
  cc: string[];
  bcc: string[];
  html: string;
  perRecipient: boolean;
  /** When the mail left (ISO 8601): the on-send handler registers it as the user presses Send. The server's timing
   *  rules (a click within seconds of sending is a scanner's) measure from it, and the panes show it. */
  sentAt: string;
  source: string;
}

/** One tracked copy (MessagesApi.CopyResponse). `token` is read when the server sends it; else the pixel URL has it. */
export interface RegisteredCopy {
  id: string;
  recipients: string[];
  messageId: string;
  html: string;
  pixelUrl: string;
  token?: string;
  links: { ordinal: number; url: string; trackedUrl: string }[];
}

export interface RegisterResponse {
  id: string;
  perRecipient: boolean;
  copies: RegisteredCopy[];
}

/** GET /api/content (ContentDto). */
export interface ContentItem {
  id: string;
  name: string;
  type: string;
  pages: number;
  thumbnails: number;
  size: number;
  allowDownload: boolean;
  createdAt: string;
  removed: boolean;
}

/** POST /api/content/{id}/links (ContentApi.DocumentLinkResponse). */
export interface DocumentLink {
  token: string;
  url: string;
  html: string;
}

export interface ActivityCounts {
  opens: number;
  clicks: number;
  pagesRead: number;
  downloads: number;
  replied: boolean;
  lastOpenAt: string | null;
  lastClickAt: string | null;
  /** Machines' opens, clicks and document events (image proxies, scanners, bots); not the sender's own. */
  machineEvents: number;
  /** The sender's own opens, clicks and document events (verdict self), apart from the machines'. */
  ownViews: number;
}

export interface RecipientActivity extends ActivityCounts {
  address: string;
}

/** GET /api/outlook/item. */
export type OutlookItem =
  | {
      kind: 'sent';
      /** token (its header), body (its pixel), internetMessageId, or conversationId: then the open item may be another email of that conversation. */
      matchedBy: 'token' | 'body' | 'internetMessageId' | 'conversationId';
      message: {
        id: string;
        subject: string;
        sentAt: string | null;
        perRecipient: boolean;
        recipients: RecipientActivity[];
        everyone: ActivityCounts;
      };
    }
  | { kind: 'reply'; answered: { messageId: string; subject: string; sentAt: string | null; from: string; verdict: string } }
  | { kind: 'none' };

/** One live-feed event's data (Feed.ActivityItem); only what the panes use. */
export interface FeedActivity {
  id: number;
  kind: string;
  messageId: string;
  recipient?: string | null;
  occurredAt: string;
}

/** The header the on-send handler stamps and the read pane looks for. */
export const TokenHeader = 'x-et-token';

/** The source the add-in registers its messages with (Data.MessageSource.OutlookAddin, kebab-case as the API writes it). */
export const Source = 'outlook-addin';
