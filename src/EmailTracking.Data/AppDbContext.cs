using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;
using Microsoft.EntityFrameworkCore.Metadata;

namespace EmailTracking.Data;

public sealed class AppDbContext(DbContextOptions<AppDbContext> options)
    : IdentityDbContext<User, IdentityRole<Guid>, Guid>(options), IDataProtectionKeyContext
{
    public DbSet<Team> Teams => Set<Team>();
    public DbSet<UserAddress> UserAddresses => Set<UserAddress>();
    public DbSet<AddressConfirmation> AddressConfirmations => Set<AddressConfirmation>();
    public DbSet<InvitationMail> InvitationMails => Set<InvitationMail>();
    public DbSet<ApiToken> ApiTokens => Set<ApiToken>();
    public DbSet<TrackedMessage> Messages => Set<TrackedMessage>();
    public DbSet<Recipient> Recipients => Set<Recipient>();
    public DbSet<MessageCopy> Copies => Set<MessageCopy>();
    public DbSet<TrackedLink> Links => Set<TrackedLink>();
    public DbSet<TrackingEvent> Events => Set<TrackingEvent>();
    public DbSet<VerdictChange> VerdictChanges => Set<VerdictChange>();
    public DbSet<MailboxConnection> Mailboxes => Set<MailboxConnection>();
    public DbSet<MailboxCursor> MailboxCursors => Set<MailboxCursor>();
    public DbSet<InboundMessage> InboundMessages => Set<InboundMessage>();
    public DbSet<UnreadableMessage> UnreadableMessages => Set<UnreadableMessage>();
    public DbSet<ContentItem> Contents => Set<ContentItem>();
    public DbSet<ContentLink> ContentLinks => Set<ContentLink>();
    public DbSet<DocumentVisit> DocumentVisits => Set<DocumentVisit>();
    public DbSet<ShareLinkCode> ShareLinkCodes => Set<ShareLinkCode>();
    public DbSet<DocumentPageTime> DocumentPageTimes => Set<DocumentPageTime>();
    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();
    public DbSet<MailTemplate> Templates => Set<MailTemplate>();
    public DbSet<Sequence> Sequences => Set<Sequence>();
    public DbSet<SequenceStep> SequenceSteps => Set<SequenceStep>();
    public DbSet<Enrolment> Enrolments => Set<Enrolment>();
    public DbSet<SequenceSend> SequenceSends => Set<SequenceSend>();
    public DbSet<Suppression> Suppressions => Set<Suppression>();
    public DbSet<PasswordResetRequest> PasswordResetRequests => Set<PasswordResetRequest>();
    public DbSet<IdempotencyKey> IdempotencyKeys => Set<IdempotencyKey>();
    public DbSet<StagedAttachment> StagedAttachments => Set<StagedAttachment>();
    public DbSet<UnsentContent> UnsentContents => Set<UnsentContent>();
    public DbSet<UnsentAttachment> UnsentAttachments => Set<UnsentAttachment>();
    public DbSet<MicrosoftAccountLink> MicrosoftAccountLinks => Set<MicrosoftAccountLink>();
    public DbSet<UsedLinkToken> UsedLinkTokens => Set<UsedLinkToken>();
    public DbSet<ServerMail> ServerMails => Set<ServerMail>();
    public DbSet<OutboxEvent> OutboxEvents => Set<OutboxEvent>();
    public DbSet<OutboxCursor> OutboxCursors => Set<OutboxCursor>();
    public DbSet<OutboxDelivery> OutboxDeliveries => Set<OutboxDelivery>();
    public DbSet<DeliveryAttempt> DeliveryAttempts => Set<DeliveryAttempt>();
    public DbSet<WebhookEndpoint> Webhooks => Set<WebhookEndpoint>();
    public DbSet<SalesforceConnection> SalesforceConnections => Set<SalesforceConnection>();

    /// <summary>
    /// A tracked message whose send time becomes known in this save is reported to the outbox in the same save (and so
    /// the same transaction): registered with a send time, or given one later (sent through a mailbox, found in Sent,
    /// marked by the API).
    /// </summary>
    public override int SaveChanges(bool acceptAllChangesOnSuccess)
    {
        AddSentToOutbox();
        return base.SaveChanges(acceptAllChangesOnSuccess);
    }

    public override Task<int> SaveChangesAsync(bool acceptAllChangesOnSuccess, CancellationToken cancellationToken = default)
    {
        AddSentToOutbox();
        return base.SaveChangesAsync(acceptAllChangesOnSuccess, cancellationToken);
    }

    void AddSentToOutbox()
    {
        foreach (var entry in ChangeTracker.Entries<TrackedMessage>().ToList())
        {
            var m = entry.Entity;
            if (m.SentAt is not { } sent) continue;
            var becameSent = entry.State == EntityState.Added
                             || (entry.State == EntityState.Modified && entry.Property(x => x.SentAt).OriginalValue is null);
            if (!becameSent) continue;
            OutboxEvents.Add(new OutboxEvent { TeamId = m.TeamId, UserId = m.UserId, Type = OutboxEvent.MessageSent, TrackedMessageId = m.Id, OccurredAt = sent });
        }
    }

    protected override void OnModelCreating(ModelBuilder b)
    {
        base.OnModelCreating(b);

        b.Entity<Team>(e =>
        {
            e.Property(x => x.Name).HasMaxLength(200);
            e.HasIndex(x => x.Name).IsUnique();
            // Names differing only in case are one team, the database's unique index says so too: two made at once cannot
            // both be kept.
            e.Property(x => x.NormalizedName).HasMaxLength(Team.MaxNormalizedNameLength);
            e.HasIndex(x => x.NormalizedName).IsUnique();
        });
        b.Entity<User>(e =>
        {
            e.HasOne(x => x.Team).WithMany(t => t.Users).HasForeignKey(x => x.TeamId);
            e.Property(x => x.DisplayName).HasMaxLength(200);
        });
        b.Entity<UserAddress>(e =>
        {
            e.Property(x => x.Address).HasMaxLength(320);
            // Unique per user, not per address: claims that prove nothing may be several users'; the one user an address
            // is proven to be is the Identity login's (primary key: provider and address).
            e.HasIndex(x => new { x.Address, x.UserId }).IsUnique();
            e.HasOne<User>().WithMany(u => u.Addresses).HasForeignKey(x => x.UserId);
        });
        b.Entity<AddressConfirmation>(e =>
        {
            e.Property(x => x.Address).HasMaxLength(320);
            e.HasIndex(x => new { x.UserId, x.SentAt });
            e.HasOne<User>().WithMany().HasForeignKey(x => x.UserId).OnDelete(DeleteBehavior.Cascade);
        });
        b.Entity<InvitationMail>(e =>
        {
            e.HasIndex(x => new { x.TeamId, x.SentAt });
            e.HasOne<Team>().WithMany().HasForeignKey(x => x.TeamId).OnDelete(DeleteBehavior.Cascade);
        });
        b.Entity<ApiToken>(e =>
        {
            e.Property(x => x.Name).HasMaxLength(100);
            e.Property(x => x.Prefix).HasMaxLength(16);
            e.HasIndex(x => x.Hash).IsUnique();
        });
        b.Entity<TrackedMessage>(e =>
        {
            e.Property(x => x.FromAddress).HasMaxLength(320);
            e.Property(x => x.Subject).HasMaxLength(1000);
            e.HasIndex(x => new { x.TeamId, x.CreatedAt });
            e.HasIndex(x => new { x.UserId, x.CreatedAt });
            e.HasOne(x => x.User).WithMany().HasForeignKey(x => x.UserId);
            e.HasMany(x => x.Recipients).WithOne(r => r.TrackedMessage).HasForeignKey(r => r.TrackedMessageId);
            e.HasMany(x => x.Copies).WithOne(c => c.TrackedMessage).HasForeignKey(c => c.TrackedMessageId);
        });
        b.Entity<Recipient>(e =>
        {
            e.Property(x => x.Address).HasMaxLength(320);
            e.Property(x => x.Name).HasMaxLength(200);
        });
        b.Entity<MessageCopy>(e =>
        {
            e.Property(x => x.MessageIdHeader).HasMaxLength(250);
            e.Property(x => x.PixelToken).HasMaxLength(64);
            e.HasIndex(x => x.PixelToken).IsUnique();
            e.HasIndex(x => x.MessageIdHeader).IsUnique();
            // Most copies have none of these (mail sent over SMTP keeps our Message-ID and has no provider thread):
            // partial indexes hold only the copies that do, so looking an id up in them costs next to nothing.
            e.Property(x => x.SentMessageIdHeader).HasMaxLength(250);
            e.HasIndex(x => x.SentMessageIdHeader).HasFilter("\"SentMessageIdHeader\" IS NOT NULL");
            e.Property(x => x.ProviderThreadId).HasMaxLength(200);
            e.HasIndex(x => x.ProviderThreadId).HasFilter("\"ProviderThreadId\" IS NOT NULL");
            e.Property(x => x.ThreadIndex).HasMaxLength(40);
            e.HasIndex(x => x.ThreadIndex).HasFilter("\"ThreadIndex\" IS NOT NULL");
            e.Property(x => x.NotSentReason).HasMaxLength(1000);
            // Only the copies being sent again have one.
            e.HasIndex(x => x.ResendClaim).HasFilter("\"ResendClaim\" IS NOT NULL");
            e.HasMany(x => x.Links).WithOne(l => l.Copy).HasForeignKey(l => l.CopyId);
        });
        b.Entity<TrackedLink>(e =>
        {
            e.Property(x => x.Token).HasMaxLength(64);
            e.HasIndex(x => x.Token).IsUnique();
        });
        b.Entity<TrackingEvent>(e =>
        {
            e.Property(x => x.Ip).HasMaxLength(64);
            e.Property(x => x.UserAgent).HasMaxLength(1024);
            e.Property(x => x.Method).HasMaxLength(16);
            e.Property(x => x.FromAddress).HasMaxLength(320);
            e.Property(x => x.Reason).HasMaxLength(300);
            e.Property(x => x.Url).HasMaxLength(2000);
            e.Property(x => x.ReaderEmail).HasMaxLength(320);
            // Every index costs each pixel hit a page write; these are the ones the reads need. Per-copy questions
            // (click bursts, proxy repeats) go through the message's index: a message has few events.
            e.HasIndex(x => new { x.TrackedMessageId, x.Id });
            e.HasIndex(x => new { x.TeamId, x.Id });
            e.HasIndex(x => new { x.UserId, x.Id });
            // A document's events (its page's followed links, a share-link reader's limit on them). Only rows of a
            // document are in it: a pixel hit or a click names none, and writes nothing here.
            e.HasIndex(x => new { x.ContentId, x.Id }).HasFilter("\"ContentId\" IS NOT NULL").HasDatabaseName("IX_Events_DocumentReads");
        });
        b.Entity<VerdictChange>(e =>
        {
            e.Property(x => x.Reason).HasMaxLength(300);
            // The feed reads a user's or a team's changes after a cursor, as it reads their events.
            e.HasIndex(x => new { x.TeamId, x.Id });
            e.HasIndex(x => new { x.UserId, x.Id });
        });
        b.Entity<MailboxConnection>(e =>
        {
            e.Property(x => x.Address).HasMaxLength(320);
            e.Property(x => x.StatusMessage).HasMaxLength(1000);
            e.Property(x => x.LeaseOwner).HasMaxLength(100);
            e.HasIndex(x => new { x.UserId, x.Kind, x.Address }).IsUnique();
            e.HasMany(x => x.Cursors).WithOne().HasForeignKey(c => c.ConnectionId).OnDelete(DeleteBehavior.Cascade);
        });
        b.Entity<MailboxCursor>(e =>
        {
            e.HasKey(x => new { x.ConnectionId, x.Name });
            e.Property(x => x.Name).HasMaxLength(200);
            e.Property(x => x.Value).HasMaxLength(4000);
        });
        b.Entity<InboundMessage>(e =>
        {
            e.Property(x => x.ProviderId).HasMaxLength(300);
            e.Property(x => x.InternetMessageId).HasMaxLength(500);
            e.Property(x => x.FromAddress).HasMaxLength(320);
            e.Property(x => x.Subject).HasMaxLength(1000);
            e.Property(x => x.Reason).HasMaxLength(300);
            e.Property(x => x.Status).HasMaxLength(20);
            e.Property(x => x.Excerpt).HasMaxLength(500);
            e.HasIndex(x => new { x.ConnectionId, x.ProviderId }).IsUnique();
            e.HasIndex(x => new { x.UserId, x.InternetMessageId }).IsUnique();
            e.HasIndex(x => new { x.TrackedMessageId, x.Id });
            // A person's replies by their author: one from an enrolled address stops its sequence whichever of the
            // owner's tracked mails it answers (SequenceRunner.ApplyAnswersAsync looks them up for each live enrolment).
            e.HasIndex(x => new { x.UserId, x.FromAddress, x.Id });
        });
        b.Entity<UnreadableMessage>(e =>
        {
            e.Property(x => x.ProviderId).HasMaxLength(300);
            e.Property(x => x.Folder).HasMaxLength(300);
            e.Property(x => x.Reason).HasMaxLength(500);
            e.HasIndex(x => new { x.ConnectionId, x.ProviderId }).IsUnique();
            e.HasIndex(x => x.UserId);
        });
        b.Entity<ContentItem>(e =>
        {
            e.ToTable("Contents");
            e.Property(x => x.Name).HasMaxLength(255);
            e.Property(x => x.OriginalSha256).HasMaxLength(64);
            e.Property(x => x.PdfSha256).HasMaxLength(64);
            e.HasIndex(x => new { x.TeamId, x.CreatedAt });
            e.HasIndex(x => new { x.UserId, x.CreatedAt });
        });
        b.Entity<ContentLink>(e =>
        {
            e.Property(x => x.Token).HasMaxLength(64);
            e.HasIndex(x => x.Token).IsUnique();
            e.HasIndex(x => new { x.ContentId, x.CreatedAt });
            e.HasIndex(x => x.TrackedMessageId).HasFilter("\"TrackedMessageId\" IS NOT NULL");
            e.HasOne(x => x.Content).WithMany().HasForeignKey(x => x.ContentId);
        });
        b.Entity<DocumentVisit>(e =>
        {
            e.Property(x => x.Ip).HasMaxLength(64);
            e.Property(x => x.UserAgent).HasMaxLength(1024);
            e.Property(x => x.Reason).HasMaxLength(300);
            e.HasIndex(x => new { x.ContentId, x.StartedAt });
            e.HasIndex(x => new { x.ContentLinkId, x.StartedAt });
            e.HasIndex(x => x.TrackedMessageId).HasFilter("\"TrackedMessageId\" IS NOT NULL");
            e.Property(x => x.ReaderEmail).HasMaxLength(320);
            e.HasMany(x => x.Pages).WithOne().HasForeignKey(p => p.VisitId).OnDelete(DeleteBehavior.Cascade);
        });
        b.Entity<DocumentPageTime>(e => e.HasKey(x => new { x.VisitId, x.Page }));
        b.Entity<ShareLinkCode>(e =>
        {
            e.Property(x => x.Visitor).HasMaxLength(64);
            e.Property(x => x.Email).HasMaxLength(320);
            e.Property(x => x.CodeHash).HasMaxLength(64);
            // One row per link, client address and email address: a new code replaces the last, the wrong ones add up.
            e.HasIndex(x => new { x.ContentLinkId, x.Visitor, x.Email }).IsUnique();
            e.HasOne<ContentLink>().WithMany().HasForeignKey(x => x.ContentLinkId).OnDelete(DeleteBehavior.Cascade);
        });
        b.Entity<MailTemplate>(e =>
        {
            e.Property(x => x.Name).HasMaxLength(200);
            e.Property(x => x.Subject).HasMaxLength(1000);
            e.HasIndex(x => new { x.TeamId, x.Name });
        });
        b.Entity<Sequence>(e =>
        {
            e.Property(x => x.Name).HasMaxLength(200);
            e.Property(x => x.TimeZone).HasMaxLength(64);
            e.HasIndex(x => new { x.TeamId, x.CreatedAt });
            e.HasMany(x => x.Steps).WithOne().HasForeignKey(s => s.SequenceId).OnDelete(DeleteBehavior.Cascade);
        });
        b.Entity<SequenceStep>(e => e.HasIndex(x => new { x.SequenceId, x.Position }).IsUnique());
        b.Entity<Enrolment>(e =>
        {
            e.Property(x => x.Address).HasMaxLength(320);
            e.Property(x => x.Domain).HasMaxLength(255);
            e.Property(x => x.TimeZone).HasMaxLength(64);
            e.Property(x => x.Note).HasMaxLength(1000);
            e.Property(x => x.UnsubscribeToken).HasMaxLength(64);
            e.Property(x => x.LeaseOwner).HasMaxLength(100);
            e.HasIndex(x => new { x.SequenceId, x.Address }).IsUnique();
            e.HasIndex(x => new { x.State, x.NextAt });
            e.HasIndex(x => x.UnsubscribeToken).IsUnique();
            e.HasIndex(x => new { x.SequenceId, x.Domain });
        });
        b.Entity<SequenceSend>(e =>
        {
            e.Property(x => x.MessageIdHeader).HasMaxLength(500);
            e.Property(x => x.Error).HasMaxLength(1000);
            e.HasIndex(x => new { x.EnrolmentId, x.Step }).IsUnique();
            e.HasIndex(x => x.TrackedMessageId);
            e.HasIndex(x => new { x.MailboxId, x.IntentAt });
        });
        b.Entity<OutboxEvent>(e =>
        {
            e.Property(x => x.Type).HasMaxLength(64);
            e.HasIndex(x => x.Id).HasFilter("\"DispatchedAt\" IS NULL").HasDatabaseName("IX_OutboxEvents_Undispatched");
        });
        b.Entity<OutboxCursor>(e =>
        {
            e.HasKey(x => x.Name);
            e.Property(x => x.Name).HasMaxLength(64);
        });
        b.Entity<OutboxDelivery>(e =>
        {
            e.Property(x => x.TargetKind).HasMaxLength(32);
            e.Property(x => x.EventType).HasMaxLength(64);
            e.Property(x => x.IdempotencyKey).HasMaxLength(100);
            e.Property(x => x.LastError).HasMaxLength(2000);
            e.Property(x => x.ExternalId).HasMaxLength(100);
            e.Property(x => x.LeaseOwner).HasMaxLength(100);
            e.HasIndex(x => new { x.TargetKind, x.TargetId, x.IdempotencyKey }).IsUnique();
            e.HasIndex(x => new { x.State, x.NextAttemptAt });
            e.HasIndex(x => new { x.TeamId, x.Id });
        });
        b.Entity<DeliveryAttempt>(e =>
        {
            e.Property(x => x.Outcome).HasMaxLength(32);
            e.Property(x => x.Detail).HasMaxLength(2000);
            e.HasIndex(x => new { x.DeliveryId, x.Id });
        });
        b.Entity<WebhookEndpoint>(e =>
        {
            e.Property(x => x.Url).HasMaxLength(2000);
            e.Property(x => x.EventTypes).HasMaxLength(500);
            e.Property(x => x.Description).HasMaxLength(200);
            e.HasIndex(x => x.TeamId);
        });
        b.Entity<Suppression>(e =>
        {
            e.Property(x => x.Address).HasMaxLength(320);
            e.Property(x => x.Detail).HasMaxLength(1000);
            e.HasIndex(x => new { x.TeamId, x.Address }).IsUnique();
        });
        b.Entity<PasswordResetRequest>(e =>
        {
            // A request reads its address's and its client's rows of the last day; the upkeep deletes older ones.
            e.HasIndex(x => new { x.Key, x.At });
            e.HasIndex(x => x.At);
        });
        b.Entity<IdempotencyKey>(e =>
        {
            // One claim per user and key, whichever instance takes it: the second insert is refused.
            e.HasKey(x => new { x.UserId, x.Key });
            e.Property(x => x.Key).HasMaxLength(255);
            e.Property(x => x.RequestHash).HasMaxLength(32);
            // The upkeep deletes the keys older than a day.
            e.HasIndex(x => x.CreatedAt);
            e.HasOne<User>().WithMany().HasForeignKey(x => x.UserId).OnDelete(DeleteBehavior.Cascade);
        });
        b.Entity<StagedAttachment>(e =>
        {
            e.Property(x => x.FileName).HasMaxLength(200);
            // A send reads and deletes its form's rows; the upkeep deletes the expired ones.
            e.HasIndex(x => new { x.UserId, x.FormKey });
            e.HasIndex(x => x.ExpiresAt);
            e.HasOne<User>().WithMany().HasForeignKey(x => x.UserId).OnDelete(DeleteBehavior.Cascade);
        });
        b.Entity<UnsentContent>(e =>
        {
            e.HasKey(x => x.TrackedMessageId);
            e.HasOne<TrackedMessage>().WithOne().HasForeignKey<UnsentContent>(x => x.TrackedMessageId).OnDelete(DeleteBehavior.Cascade);
            e.HasMany(x => x.Attachments).WithOne().HasForeignKey(x => x.TrackedMessageId).OnDelete(DeleteBehavior.Cascade);
            // The upkeep deletes the expired rows.
            e.HasIndex(x => x.KeptUntil);
        });
        b.Entity<UnsentAttachment>(e =>
        {
            e.Property(x => x.FileName).HasMaxLength(200);
            e.Property(x => x.MediaType).HasMaxLength(200);
        });
        b.Entity<MicrosoftAccountLink>(e =>
        {
            e.Property(x => x.TenantId).HasMaxLength(36);
            e.Property(x => x.ObjectId).HasMaxLength(36);
            e.Property(x => x.DisplayName).HasMaxLength(256);
            e.Property(x => x.SignInName).HasMaxLength(320);
            // One user per Microsoft account: the add-in's sign-in finds the user by it.
            e.HasIndex(x => new { x.TenantId, x.ObjectId }).IsUnique();
            e.HasIndex(x => x.UserId);
            e.HasOne<User>().WithMany().HasForeignKey(x => x.UserId).OnDelete(DeleteBehavior.Cascade);
        });
        b.Entity<UsedLinkToken>(e =>
        {
            e.Property(x => x.Id).HasMaxLength(32);
            e.HasIndex(x => x.ExpiresAt);
        });
        b.Entity<ServerMail>(e =>
        {
            e.Property(x => x.Kind).HasMaxLength(32);
            e.Property(x => x.Recipient).HasMaxLength(320);
            e.Property(x => x.Data).HasMaxLength(2000);
            e.Property(x => x.LastError).HasMaxLength(2000);
            e.Property(x => x.LeaseOwner).HasMaxLength(100);
            // The worker claims pending mails by when they are due; the upkeep deletes the others by age.
            e.HasIndex(x => new { x.State, x.NextAttemptAt });
            e.HasIndex(x => x.CreatedAt);
        });
        b.Entity<SalesforceConnection>(e =>
        {
            e.Property(x => x.InstanceUrl).HasMaxLength(300);
            e.Property(x => x.SalesforceUsername).HasMaxLength(320);
            e.Property(x => x.StatusMessage).HasMaxLength(1000);
            // One org per team: the outbox names the connection, and the page shows the team's.
            e.HasIndex(x => x.TeamId).IsUnique();
        });

        if (Database.IsSqlite())
        {
            // SQLite cannot order or compare DateTimeOffset: store ticks with the offset (every time written is UTC, and
            // queries compare with UTC values, so the order holds). Its default for Guid is 36 characters of
            // text: store the 16 bytes, which keeps the indexes (and each hit's page writes) small. PostgreSQL has
            // native timestamptz and uuid.
            var time = new DateTimeOffsetToBinaryConverter();
            var guid = new GuidToBytesConverter();
            foreach (var entity in b.Model.GetEntityTypes())
            {
                foreach (var p in entity.GetProperties())
                {
                    if (p.ClrType == typeof(DateTimeOffset) || p.ClrType == typeof(DateTimeOffset?)) p.SetValueConverter(time);
                    else if (p.ClrType == typeof(Guid) || p.ClrType == typeof(Guid?)) p.SetValueConverter(guid);
                }
            }
            // The events' ids are plain rowids, one more than the largest there is, rather than AUTOINCREMENT's, which
            // keep a counter in sqlite_sequence that each INSERT reads and writes: the recorder's multi-row inserts cost
            // about a third more with it. Ids still only grow (the live feed resumes after one): events are never deleted.
            b.Entity<TrackingEvent>().Property(x => x.Id).Metadata.SetValueGenerationStrategy(SqliteValueGenerationStrategy.None);
        }
    }
}
