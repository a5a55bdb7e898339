import { createNestablePublicClientApplication, InteractionRequiredAuthError, type IPublicClientApplication } from '@azure/msal-browser';
import { getAnonymous, type TokenSource } from './api';
import type { OutlookConfig } from './contract';
import { supports } from './office';

/**
 * The add-in's access token for our API. Nested app authentication (MSAL through the Outlook host) where the client
 * has NestedAppAuth 1.1, else Office's own SSO token (`Office.auth.getAccessToken`, with the sign-in and consent
 * prompts allowed). Neither is cached here: MSAL keeps its own cache and Office caches the SSO token itself.
 */
export function tokenSource(office: typeof Office, base: string, fetchImpl?: typeof fetch): TokenSource {
  if (supports(office, 'NestedAppAuth', '1.1')) {
    let app: Promise<{ pca: IPublicClientApplication; config: OutlookConfig }> | null = null;
    return async () => {
      app ??= (async () => {
        const config = await getAnonymous<OutlookConfig>(base, '/api/outlook/config', fetchImpl);
        const pca = await createNestablePublicClientApplication({ auth: { clientId: config.clientId, authority: config.authority } });
        return { pca, config };
      })().catch((e: unknown) => {
        app = null; // try again on the next call: the server may have been down
        throw e;
      });
      const { pca, config } = await app;
      const account = pca.getActiveAccount() ?? pca.getAllAccounts()[0];
      const request = account ? { scopes: config.scopes, account } : { scopes: config.scopes };
      try {
        return (await pca.acquireTokenSilent(request)).accessToken;
      } catch (e) {
        if (!(e instanceof InteractionRequiredAuthError)) throw e;
        return (await pca.acquireTokenPopup({ scopes: config.scopes })).accessToken;
      }
    };
  }
  return () => office.auth.getAccessToken({ allowSignInPrompt: true, allowConsentPrompt: true });
}
