using Google.Apis.Discovery;
using Google.Apis.Requests;
using Google.Apis.Services;
using Google.Apis.Util;
using Newtonsoft.Json;

namespace EmailTracking.Server.Mailboxes.Gmail;

/// <summary>
/// The few Gmail REST methods the connector uses, typed on the Google.Apis core (the same request pipeline,
/// credentials, retries and error parsing as Google's generated clients). It exists because the generated package
/// Google.Apis.Gmail.v1 is not served by the package registry this project builds from; the shapes follow the Gmail
/// REST reference (users.getProfile, messages.get/send/list, history.list, watch, stop). <see cref="BaseUri"/> can
/// be pointed elsewhere (tests use a local fake that follows the same wire format).
/// </summary>
public sealed class GmailClient(BaseClientService.Initializer initializer) : BaseClientService(initializer)
{
    public const string DefaultBaseUri = "https://gmail.googleapis.com/";

    public override string Name => "gmail";
    public override string BaseUri => BaseUriOverride ?? DefaultBaseUri;
    public override string BasePath => "";
    public override IList<string> Features => [];

    public GetProfileRequest GetProfile() => new(this);
    public GetMessageRequest GetMessage(string id, MessageFormat format) => new(this, id) { Format = format };
    public SendMessageRequest SendMessage(GmailMessage body) => new(this, body);
    public ListMessagesRequest ListMessages() => new(this);

    /// <summary>
    /// users.messages.send through the media upload URI (<c>/upload/gmail/v1/users/me/messages/send</c>), for a message
    /// too large to go base64url in a JSON body (Gmail takes up to 35 MB there). Without a thread the bytes go as they
    /// are (<c>uploadType=media</c>, <c>Content-Type: message/rfc822</c>); with one, the thread id goes in the metadata
    /// part of a <c>multipart/related</c> body (<c>uploadType=multipart</c>), as Google's upload guide describes. On the
    /// service's HttpClient, so the same credentials (and refresh on 401) apply; a refusal is a
    /// <see cref="Google.GoogleApiException"/> with Google's error, as from the other calls.
    /// </summary>
    public async Task<GmailMessage> UploadAndSendAsync(byte[] mime, string? threadId, CancellationToken ct)
    {
        var media = new ByteArrayContent(mime);
        media.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("message/rfc822");
        HttpContent content = media;
        var uploadType = "media";
        if (threadId is not null)
        {
            var metadata = new StringContent(JsonConvert.SerializeObject(new GmailMessage { ThreadId = threadId },
                new JsonSerializerSettings { NullValueHandling = NullValueHandling.Ignore }), System.Text.Encoding.UTF8, "application/json");
            content = new MultipartContent("related") { metadata, media };
            uploadType = "multipart";
        }
        using var request = new HttpRequestMessage(System.Net.Http.HttpMethod.Post, $"{BaseUri}upload/gmail/v1/users/me/messages/send?uploadType={uploadType}")
        {
            Content = content,
        };
        using var response = await HttpClient.SendAsync(request, ct);
        if (!response.IsSuccessStatusCode)
        {
            var error = await DeserializeError(response);
            throw new Google.GoogleApiException(Name, error?.Message ?? $"The upload was refused ({(int)response.StatusCode}).")
            {
                Error = error,
                HttpStatusCode = response.StatusCode,
            };
        }
        return JsonConvert.DeserializeObject<GmailMessage>(await response.Content.ReadAsStringAsync(ct))
            ?? throw new Google.GoogleApiException(Name, "Gmail answered the upload with no message.");
    }
    public ListHistoryRequest ListHistory(ulong startHistoryId) => new(this) { StartHistoryId = startHistoryId };
    public WatchRequestCall Watch(WatchRequest body) => new(this, body);
    public StopRequest Stop() => new(this);

    public enum MessageFormat
    {
        [StringValue("minimal")] Minimal,
        [StringValue("full")] Full,
        [StringValue("raw")] Raw,
        [StringValue("metadata")] Metadata,
    }

    /// <summary>Base of every call: the user is "me" (the owner of the OAuth grant) and the standard query parameters.</summary>
    public abstract class GmailRequest<T> : ClientServiceRequest<T>
    {
        protected GmailRequest(IClientService service) : base(service) => InitParameters();

        [RequestParameter("userId", RequestParameterType.Path)]
        public string UserId { get; set; } = "me";

        [RequestParameter("fields", RequestParameterType.Query)]
        public string? Fields { get; set; }

        [RequestParameter("quotaUser", RequestParameterType.Query)]
        public string? QuotaUser { get; set; }

        protected override void InitParameters()
        {
            base.InitParameters();
            Path("userId", "me");
            Query("fields");
            Query("quotaUser");
        }

        protected void Path(string name, string? defaultValue = null) =>
            RequestParameters.Add(name, new Parameter { Name = name, IsRequired = true, ParameterType = "path", DefaultValue = defaultValue });

        protected void Query(string name) =>
            RequestParameters.Add(name, new Parameter { Name = name, IsRequired = false, ParameterType = "query" });
    }

    /// <summary>users.getProfile: the address of the mailbox and its current history id.</summary>
    public sealed class GetProfileRequest(IClientService service) : GmailRequest<GmailProfile>(service)
    {
        public override string MethodName => "getProfile";
        public override string HttpMethod => "GET";
        public override string RestPath => "gmail/v1/users/{userId}/profile";
    }

    /// <summary>users.messages.get: raw (base64url RFC 822) or metadata (the named headers only).</summary>
    public sealed class GetMessageRequest : GmailRequest<GmailMessage>
    {
        public GetMessageRequest(IClientService service, string id) : base(service) => Id = id;

        [RequestParameter("id", RequestParameterType.Path)]
        public string Id { get; set; }

        [RequestParameter("format", RequestParameterType.Query)]
        public MessageFormat? Format { get; set; }

        [RequestParameter("metadataHeaders", RequestParameterType.Query)]
        public Repeatable<string>? MetadataHeaders { get; set; }

        public override string MethodName => "get";
        public override string HttpMethod => "GET";
        public override string RestPath => "gmail/v1/users/{userId}/messages/{id}";

        protected override void InitParameters()
        {
            base.InitParameters();
            Path("id");
            Query("format");
            Query("metadataHeaders");
        }
    }

    /// <summary>users.messages.send with a JSON body: <c>raw</c> (base64url MIME) and optionally <c>threadId</c>.</summary>
    public sealed class SendMessageRequest(IClientService service, GmailMessage body) : GmailRequest<GmailMessage>(service)
    {
        public override string MethodName => "send";
        public override string HttpMethod => "POST";
        public override string RestPath => "gmail/v1/users/{userId}/messages/send";
        protected override object GetBody() => body;
    }

    /// <summary>users.messages.list: ids (and thread ids) only, newest first, in pages.</summary>
    public sealed class ListMessagesRequest(IClientService service) : GmailRequest<ListMessagesResponse>(service)
    {
        [RequestParameter("q", RequestParameterType.Query)]
        public string? Q { get; set; }

        [RequestParameter("labelIds", RequestParameterType.Query)]
        public Repeatable<string>? LabelIds { get; set; }

        [RequestParameter("maxResults", RequestParameterType.Query)]
        public long? MaxResults { get; set; }

        [RequestParameter("pageToken", RequestParameterType.Query)]
        public string? PageToken { get; set; }

        [RequestParameter("includeSpamTrash", RequestParameterType.Query)]
        public bool? IncludeSpamTrash { get; set; }

        public override string MethodName => "list";
        public override string HttpMethod => "GET";
        public override string RestPath => "gmail/v1/users/{userId}/messages";

        protected override void InitParameters()
        {
            base.InitParameters();
            Query("q");
            Query("labelIds");
            Query("maxResults");
            Query("pageToken");
            Query("includeSpamTrash");
        }
    }

    /// <summary>users.history.list: changes after a history id, oldest first, in pages; 404 when the id is too old.</summary>
    public sealed class ListHistoryRequest(IClientService service) : GmailRequest<ListHistoryResponse>(service)
    {
        [RequestParameter("startHistoryId", RequestParameterType.Query)]
        public ulong? StartHistoryId { get; set; }

        [RequestParameter("historyTypes", RequestParameterType.Query)]
        public Repeatable<string>? HistoryTypes { get; set; }

        [RequestParameter("labelId", RequestParameterType.Query)]
        public string? LabelId { get; set; }

        [RequestParameter("maxResults", RequestParameterType.Query)]
        public long? MaxResults { get; set; }

        [RequestParameter("pageToken", RequestParameterType.Query)]
        public string? PageToken { get; set; }

        public override string MethodName => "list";
        public override string HttpMethod => "GET";
        public override string RestPath => "gmail/v1/users/{userId}/history";

        protected override void InitParameters()
        {
            base.InitParameters();
            Query("startHistoryId");
            Query("historyTypes");
            Query("labelId");
            Query("maxResults");
            Query("pageToken");
        }
    }

    /// <summary>users.watch: Gmail publishes changes of the mailbox to a Pub/Sub topic until the expiration.</summary>
    public sealed class WatchRequestCall(IClientService service, WatchRequest body) : GmailRequest<WatchResponse>(service)
    {
        public override string MethodName => "watch";
        public override string HttpMethod => "POST";
        public override string RestPath => "gmail/v1/users/{userId}/watch";
        protected override object GetBody() => body;
    }

    /// <summary>users.stop: no more push notifications for this mailbox.</summary>
    public sealed class StopRequest(IClientService service) : GmailRequest<string>(service)
    {
        public override string MethodName => "stop";
        public override string HttpMethod => "POST";
        public override string RestPath => "gmail/v1/users/{userId}/stop";
    }
}

public abstract class GmailData : IDirectResponseSchema
{
    [JsonIgnore] public string? ETag { get; set; }
}

public sealed class GmailProfile : GmailData
{
    [JsonProperty("emailAddress")] public string? EmailAddress { get; set; }
    [JsonProperty("messagesTotal")] public int? MessagesTotal { get; set; }
    [JsonProperty("threadsTotal")] public int? ThreadsTotal { get; set; }
    [JsonProperty("historyId")] public ulong? HistoryId { get; set; }
}

public sealed class GmailMessage : GmailData
{
    [JsonProperty("id")] public string? Id { get; set; }
    [JsonProperty("threadId")] public string? ThreadId { get; set; }
    [JsonProperty("labelIds")] public IList<string>? LabelIds { get; set; }
    [JsonProperty("snippet")] public string? Snippet { get; set; }
    [JsonProperty("historyId")] public ulong? HistoryId { get; set; }
    /// <summary>When Gmail received the message, epoch milliseconds.</summary>
    [JsonProperty("internalDate")] public long? InternalDate { get; set; }
    [JsonProperty("sizeEstimate")] public int? SizeEstimate { get; set; }
    /// <summary>The whole message, base64url (format=raw; and the body of messages.send).</summary>
    [JsonProperty("raw")] public string? Raw { get; set; }
    [JsonProperty("payload")] public GmailMessagePart? Payload { get; set; }

    public bool HasLabel(string label) => LabelIds?.Contains(label) == true;

    /// <summary>A header from format=metadata, compared by name without regard to case.</summary>
    public string? Header(string name) =>
        Payload?.Headers?.FirstOrDefault(h => string.Equals(h.Name, name, StringComparison.OrdinalIgnoreCase))?.Value;
}

public sealed class GmailMessagePart
{
    [JsonProperty("partId")] public string? PartId { get; set; }
    [JsonProperty("mimeType")] public string? MimeType { get; set; }
    [JsonProperty("headers")] public IList<GmailHeader>? Headers { get; set; }
}

public sealed class GmailHeader
{
    [JsonProperty("name")] public string? Name { get; set; }
    [JsonProperty("value")] public string? Value { get; set; }
}

public sealed class ListMessagesResponse : GmailData
{
    [JsonProperty("messages")] public IList<GmailMessage>? Messages { get; set; }
    [JsonProperty("nextPageToken")] public string? NextPageToken { get; set; }
    [JsonProperty("resultSizeEstimate")] public long? ResultSizeEstimate { get; set; }
}

public sealed class ListHistoryResponse : GmailData
{
    [JsonProperty("history")] public IList<GmailHistory>? History { get; set; }
    [JsonProperty("nextPageToken")] public string? NextPageToken { get; set; }
    /// <summary>The mailbox's current history id: where the next list starts once every page was read.</summary>
    [JsonProperty("historyId")] public ulong? HistoryId { get; set; }
}

public sealed class GmailHistory
{
    [JsonProperty("id")] public ulong? Id { get; set; }
    [JsonProperty("messages")] public IList<GmailMessage>? Messages { get; set; }
    [JsonProperty("messagesAdded")] public IList<GmailHistoryMessage>? MessagesAdded { get; set; }
    [JsonProperty("labelsAdded")] public IList<GmailHistoryLabels>? LabelsAdded { get; set; }
    [JsonProperty("labelsRemoved")] public IList<GmailHistoryLabels>? LabelsRemoved { get; set; }
}

public sealed class GmailHistoryMessage
{
    [JsonProperty("message")] public GmailMessage? Message { get; set; }
}

/// <summary>A labelsAdded or labelsRemoved entry: the message (id, thread, its labels now) and the labels added or removed.</summary>
public sealed class GmailHistoryLabels
{
    [JsonProperty("message")] public GmailMessage? Message { get; set; }
    [JsonProperty("labelIds")] public IList<string>? LabelIds { get; set; }
}

public sealed class WatchRequest
{
    [JsonProperty("topicName")] public string? TopicName { get; set; }
    [JsonProperty("labelIds")] public IList<string>? LabelIds { get; set; }
    [JsonProperty("labelFilterBehavior")] public string? LabelFilterBehavior { get; set; }
}

public sealed class WatchResponse : GmailData
{
    [JsonProperty("historyId")] public ulong? HistoryId { get; set; }
    /// <summary>When Gmail stops publishing unless watch is called again, epoch milliseconds.</summary>
    [JsonProperty("expiration")] public long? Expiration { get; set; }
}
