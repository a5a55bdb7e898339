// A test double of Office.js for the Outlook add-in: exactly the APIs the add-in calls, with Office's signatures
// (optional options object, then an optional callback), asynchronous callbacks and AsyncResult shapes
// ({ status, value, error: { name, message, code }, asyncContext, diagnostics }). Every call is recorded in
// `calls`, in order, with its arguments (callbacks left out), for tests to assert on.
//
// A classic script. In a browser it installs itself when `window.__officeDoubleConfig` is set before it runs
// (Playwright serves it in place of https://appsforoffice.microsoft.com/lib/1/hosted/office.js): `window.Office`
// is the double's namespace and `window.__officeDouble` its driver. Vitest imports it for `globalThis.OfficeDouble`.
(function (root) {
  'use strict';

  var AsyncResultStatus = { Succeeded: 'succeeded', Failed: 'failed' };
  var CoercionType = { Html: 'html', Text: 'text', Matrix: 'matrix', Table: 'table', Image: 'image', Ooxml: 'ooxml', SlideRange: 'slideRange', XmlSvg: 'xmlSvg' };
  var EventType = { RecipientsChanged: 'olkRecipientsChanged', ItemChanged: 'olkItemSelectedChanged', FromChanged: 'olkFromChanged',
    DialogMessageReceived: 'dialogMessageReceived', DialogEventReceived: 'dialogEventReceived' };
  var HostType = { Outlook: 'Outlook' };
  var PlatformType = { OfficeOnline: 'OfficeOnline', PC: 'PC', Mac: 'Mac' };
  var MailboxEnums = {
    ItemNotificationMessageType: { ProgressIndicator: 'progressIndicator', InformationalMessage: 'informationalMessage', ErrorMessage: 'errorMessage', InsightMessage: 'insightMessage' },
    ItemType: { Message: 'message', Appointment: 'appointment' },
    RecipientType: { DistributionList: 'distributionList', User: 'user', ExternalUser: 'externalUser', Other: 'other' },
  };

  function clone(v) {
    return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
  }

  /** "1.13" >= "1.8", numerically by part. */
  function atLeast(have, want) {
    var a = String(have).split('.').map(Number), b = String(want || '1.1').split('.').map(Number);
    for (var i = 0; i < Math.max(a.length, b.length); i++) {
      var x = a[i] || 0, y = b[i] || 0;
      if (x !== y) return x > y;
    }
    return true;
  }

  function stripTags(html) {
    return String(html).replace(/<br\s*\/?>/gi, '\n').replace(/<\/p>/gi, '\n').replace(/<[^>]*>/g, '')
      .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
  }

  function create(config) {
    config = config || {};
    var calls = [];
    var handlers = {};
    var itemHandlers = {};
    var failures = config.failures || {};
    var it = config.item || {};
    var mode = config.mode || 'compose';
    var state = {
      subject: it.subject || '',
      to: clone(it.to || []), cc: clone(it.cc || []), bcc: clone(it.bcc || []),
      from: clone(it.from || { displayName: config.userName || '', emailAddress: config.userEmail || '' }),
      bodyType: it.bodyType || CoercionType.Html,
      body: it.body || '',
      cursor: it.cursor === undefined ? 0 : it.cursor, // never focused: insertions go at the top, as Outlook does
      headers: clone(it.internetHeaders || {}),
      sessionData: clone(it.sessionData || {}),
      notifications: {},
    };

    function record(api, args) {
      calls.push({ api: api, args: clone(args) });
    }

    /** Splits Office's optional trailing (options, callback) arguments. */
    function tail(args, from) {
      var options, callback;
      for (var i = from; i < args.length; i++) {
        if (typeof args[i] === 'function') callback = args[i];
        else if (args[i] && typeof args[i] === 'object') options = args[i];
      }
      return { options: options || {}, callback: callback };
    }

    /** Answers through the callback, later, as Office does; a configured failure for this API answers Failed. */
    function answer(api, t, produce) {
      var failure = failures[api];
      var delay = (config.delays && config.delays[api]) || 0;
      var result;
      if (failure) {
        result = { status: AsyncResultStatus.Failed, value: undefined, error: { name: failure.name, message: failure.message, code: failure.code }, asyncContext: t.options.asyncContext, diagnostics: undefined };
      } else {
        try {
          result = { status: AsyncResultStatus.Succeeded, value: produce(), error: undefined, asyncContext: t.options.asyncContext, diagnostics: undefined };
        } catch (e) {
          result = { status: AsyncResultStatus.Failed, value: undefined, error: e, asyncContext: t.options.asyncContext, diagnostics: undefined };
        }
      }
      if (t.callback) setTimeout(function () { t.callback(result); }, delay);
    }

    function officeError(name, message, code) {
      var e = { name: name, message: message, code: code };
      return e;
    }

    function recipients(field) {
      return {
        getAsync: function () {
          var t = tail(arguments, 0);
          record(field + '.getAsync', []);
          answer(field + '.getAsync', t, function () { return clone(state[field]); });
        },
      };
    }

    var composeItem = {
      itemType: MailboxEnums.ItemType.Message,
      subject: {
        getAsync: function () {
          var t = tail(arguments, 0);
          record('subject.getAsync', []);
          answer('subject.getAsync', t, function () { return state.subject; });
        },
        setAsync: function (subject) {
          var t = tail(arguments, 1);
          record('subject.setAsync', [subject]);
          answer('subject.setAsync', t, function () { state.subject = subject; });
        },
      },
      to: recipients('to'),
      cc: recipients('cc'),
      bcc: recipients('bcc'),
      from: {
        getAsync: function () {
          var t = tail(arguments, 0);
          record('from.getAsync', []);
          answer('from.getAsync', t, function () { return clone(state.from); });
        },
      },
      body: {
        getTypeAsync: function () {
          var t = tail(arguments, 0);
          record('body.getTypeAsync', []);
          answer('body.getTypeAsync', t, function () { return state.bodyType; });
        },
        getAsync: function (coercionType) {
          var t = tail(arguments, 1);
          record('body.getAsync', [coercionType]);
          answer('body.getAsync', t, function () {
            if (coercionType === CoercionType.Html && state.bodyType === CoercionType.Html) return state.body;
            if (coercionType === CoercionType.Text) return state.bodyType === CoercionType.Html ? stripTags(state.body) : state.body;
            // A text body read as HTML: Outlook wraps it; the add-in reads the type first and never asks for this.
            return '<div>' + state.body + '</div>';
          });
        },
        setAsync: function (data) {
          var t = tail(arguments, 1);
          record('body.setAsync', [data, { coercionType: t.options.coercionType }]);
          answer('body.setAsync', t, function () {
            if (String(data).length > 1000000) throw officeError('DataExceedsMaximumSize', 'The data exceeds the maximum size.', 9000);
            if (t.options.coercionType === CoercionType.Html && state.bodyType === CoercionType.Text)
              throw officeError('InvalidFormatError', 'The format of the specified data object is not valid.', 2006);
            state.body = String(data);
            state.cursor = state.body.length;
          });
        },
        setSelectedDataAsync: function (data) {
          var t = tail(arguments, 1);
          record('body.setSelectedDataAsync', [data, { coercionType: t.options.coercionType }]);
          answer('body.setSelectedDataAsync', t, function () {
            if (String(data).length > 1000000) throw officeError('DataExceedsMaximumSize', 'The data exceeds the maximum size.', 9000);
            if (t.options.coercionType === CoercionType.Html && state.bodyType === CoercionType.Text)
              throw officeError('InvalidFormatError', 'The format of the specified data object is not valid.', 2006);
            state.body = state.body.slice(0, state.cursor) + data + state.body.slice(state.cursor);
            state.cursor += String(data).length;
          });
        },
      },
      internetHeaders: {
        setAsync: function (headers) {
          var t = tail(arguments, 1);
          record('internetHeaders.setAsync', [headers]);
          answer('internetHeaders.setAsync', t, function () {
            Object.keys(headers).forEach(function (k) { state.headers[k] = String(headers[k]); });
          });
        },
        getAsync: function (names) {
          var t = tail(arguments, 1);
          record('internetHeaders.getAsync', [names]);
          answer('internetHeaders.getAsync', t, function () {
            var out = {};
            names.forEach(function (n) { if (n in state.headers) out[n] = state.headers[n]; });
            return out;
          });
        },
        removeAsync: function (names) {
          var t = tail(arguments, 1);
          record('internetHeaders.removeAsync', [names]);
          answer('internetHeaders.removeAsync', t, function () { names.forEach(function (n) { delete state.headers[n]; }); });
        },
      },
      sessionData: {
        getAsync: function (name) {
          var t = tail(arguments, 1);
          record('sessionData.getAsync', [name]);
          answer('sessionData.getAsync', t, function () {
            if (!(name in state.sessionData)) throw officeError('InvalidKey', 'The key was not found in the session data.', 9059);
            return state.sessionData[name];
          });
        },
        getAllAsync: function () {
          var t = tail(arguments, 0);
          record('sessionData.getAllAsync', []);
          answer('sessionData.getAllAsync', t, function () { return clone(state.sessionData); });
        },
        setAsync: function (name, value) {
          var t = tail(arguments, 2);
          record('sessionData.setAsync', [name, value]);
          answer('sessionData.setAsync', t, function () { state.sessionData[name] = String(value); });
        },
        removeAsync: function (name) {
          var t = tail(arguments, 1);
          record('sessionData.removeAsync', [name]);
          answer('sessionData.removeAsync', t, function () { delete state.sessionData[name]; });
        },
        clearAsync: function () {
          var t = tail(arguments, 0);
          record('sessionData.clearAsync', []);
          answer('sessionData.clearAsync', t, function () { state.sessionData = {}; });
        },
      },
      notificationMessages: {
        addAsync: function (key, details) {
          var t = tail(arguments, 2);
          record('notificationMessages.addAsync', [key, details]);
          answer('notificationMessages.addAsync', t, function () {
            if (Object.keys(state.notifications).length >= 5 && !(key in state.notifications))
              throw officeError('NumberOfNotificationMessagesExceeded', 'Too many notifications.', 9041);
            if (!details || !details.type) throw officeError('InvalidParameterValueError', 'A notification needs a type.', 9000);
            if (details.type !== MailboxEnums.ItemNotificationMessageType.ProgressIndicator && String(details.message || '').length > 150)
              throw officeError('DataExceedsMaximumSize', 'A notification message is at most 150 characters.', 9000);
            if (details.type === MailboxEnums.ItemNotificationMessageType.InformationalMessage && (!details.icon || details.persistent === undefined))
              throw officeError('InvalidParameterValueError', 'An informational message needs icon and persistent.', 9000);
            state.notifications[key] = clone(details);
          });
        },
        getAllAsync: function () {
          var t = tail(arguments, 0);
          record('notificationMessages.getAllAsync', []);
          answer('notificationMessages.getAllAsync', t, function () {
            return Object.keys(state.notifications).map(function (k) { var d = clone(state.notifications[k]); d.key = k; return d; });
          });
        },
        removeAsync: function (key) {
          var t = tail(arguments, 1);
          record('notificationMessages.removeAsync', [key]);
          answer('notificationMessages.removeAsync', t, function () { delete state.notifications[key]; });
        },
      },
      addHandlerAsync: function (eventType, handler) {
        var t = tail(arguments, 2);
        record('item.addHandlerAsync', [eventType]);
        answer('item.addHandlerAsync', t, function () { itemHandlers[eventType] = handler; });
      },
    };

    var readItem = {
      itemType: MailboxEnums.ItemType.Message,
      subject: it.subject || '',
      internetMessageId: it.internetMessageId,
      conversationId: it.conversationId,
      from: clone(it.from),
      to: clone(it.to || []),
      cc: clone(it.cc || []),
      getAllInternetHeadersAsync: function () {
        var t = tail(arguments, 0);
        record('getAllInternetHeadersAsync', []);
        answer('getAllInternetHeadersAsync', t, function () { return it.allHeaders || ''; });
      },
      // Read mode's body: what was received or sent, read only (an HTML body as text loses its tags, as Outlook's does).
      body: {
        getAsync: function (coercionType) {
          var t = tail(arguments, 1);
          record('body.getAsync', [coercionType]);
          answer('body.getAsync', t, function () { return coercionType === CoercionType.Html ? (it.body || '') : stripTags(it.body || ''); });
        },
      },
    };

    var sets = config.requirementSets || { Mailbox: '1.13', IdentityAPI: '1.3' };

    // Office dialogs (displayDialogAsync): one open at a time, as in Office (a second answers 12007); the test closes
    // it as the person would (closeDialog), which Office reports to the pane as DialogEventReceived with error 12006.
    var dialog = null;
    var ui = {
      displayDialogAsync: function (startAddress) {
        var t = tail(arguments, 1);
        record('ui.displayDialogAsync', [startAddress, t.options]);
        answer('ui.displayDialogAsync', t, function () {
          if (dialog) throw officeError('Display Dialog Error', 'A dialog is already opened from this add-in.', 12007);
          var opened = { url: String(startAddress), handlers: {} };
          dialog = opened;
          return {
            addEventHandler: function (eventType, handler) {
              record('dialog.addEventHandler', [eventType]);
              opened.handlers[eventType] = handler;
            },
            close: function () {
              record('dialog.close', []);
              if (dialog === opened) dialog = null;
            },
            messageChild: function () { record('dialog.messageChild', []); },
          };
        });
      },
    };

    var Office = {
      AsyncResultStatus: AsyncResultStatus,
      CoercionType: CoercionType,
      EventType: EventType,
      HostType: HostType,
      PlatformType: PlatformType,
      MailboxEnums: MailboxEnums,
      onReady: function (callback) {
        record('Office.onReady', []);
        var info = { host: HostType.Outlook, platform: config.platform || PlatformType.OfficeOnline };
        return new Promise(function (resolve) {
          setTimeout(function () {
            if (callback) callback(info);
            resolve(info);
          }, 0);
        });
      },
      context: {
        mailbox: {
          item: mode === 'read' ? readItem : composeItem,
          userProfile: { emailAddress: config.userEmail || '', displayName: config.userName || '', timeZone: 'UTC' },
          diagnostics: { hostName: 'OutlookWebApp', hostVersion: '16.0' },
        },
        ui: ui,
        requirements: {
          isSetSupported: function (name, version) {
            record('requirements.isSetSupported', [name, version]);
            return Object.prototype.hasOwnProperty.call(sets, name) && sets[name] !== null && atLeast(sets[name], version);
          },
        },
      },
      auth: {
        getAccessToken: function (options) {
          record('auth.getAccessToken', [options || {}]);
          return new Promise(function (resolve, reject) {
            setTimeout(function () {
              if (config.accessTokenError) reject(clone(config.accessTokenError));
              else resolve(config.accessToken);
            }, 0);
          });
        },
      },
      actions: {
        associate: function (name, handler) {
          record('actions.associate', [name]);
          handlers[name] = handler;
        },
      },
    };

    return {
      Office: Office,
      calls: calls,
      /** The item as it stands now: body, headers, session data and notifications. */
      state: function () { return clone(state); },
      /** The names handed to Office.actions.associate. */
      associated: function () { return Object.keys(handlers); },
      /**
       * Outlook pressing Send: runs the associated OnMessageSend handler with a MailboxEvent and settles with the
       * options it completed with (rejects when it does not complete within `timeoutMs`, Outlook's 5 minutes otherwise).
       */
      send: function (name, timeoutMs) {
        var handler = handlers[name || 'onMessageSendHandler'];
        if (!handler) return Promise.reject(new Error('no handler associated as ' + (name || 'onMessageSendHandler')));
        return new Promise(function (resolve, reject) {
          var done = false;
          var timer = setTimeout(function () { if (!done) reject(new Error('the event was never completed')); }, timeoutMs || 300000);
          var event = {
            type: 'olkMessageSend',
            completed: function (options) {
              record('event.completed', [options || {}]);
              if (done) return;
              done = true;
              clearTimeout(timer);
              resolve(clone(options || {}));
            },
          };
          handler(event);
        });
      },
      /** The address of the dialog open now; null when none is. */
      dialogUrl: function () { return dialog ? dialog.url : null; },
      /** The person closing the open dialog: the pane gets DialogEventReceived with error 12006. */
      closeDialog: function () {
        var closing = dialog;
        if (!closing) throw new Error('no dialog is open');
        dialog = null;
        var h = closing.handlers[EventType.DialogEventReceived];
        if (h) setTimeout(function () { h({ error: 12006, type: EventType.DialogEventReceived }); }, 0);
      },
      /** Outlook telling the pane the recipients changed (after a test changed them with setRecipients). */
      setRecipients: function (field, list) {
        state[field] = clone(list);
        var h = itemHandlers[EventType.RecipientsChanged];
        if (h) setTimeout(function () { h({ type: EventType.RecipientsChanged, changedRecipientFields: { to: field === 'to', cc: field === 'cc', bcc: field === 'bcc' } }); }, 0);
      },
    };
  }

  root.OfficeDouble = { create: create };
  if (root.__officeDoubleConfig) {
    var instance = create(root.__officeDoubleConfig);
    root.__officeDouble = instance;
    root.Office = instance.Office;
  }
})(typeof window !== 'undefined' ? window : globalThis);
