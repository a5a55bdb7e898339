using EmailTracking.Data;
using Microsoft.AspNetCore.Identity;
using EmailTracking.Server.Web;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Accounts;

/// <param name="Plan">The team's plan; null keeps an existing team's plan (a new team starts on Solo).</param>
/// <param name="PasswordSetByOther">The password is chosen by someone else (an admin, the operator): the user must choose their own at first sign-in.</param>
public sealed record NewUser(string Email, string TeamName, Plan? Plan, TeamRole Role, string? Password, string? DisplayName, bool PasswordSetByOther = false);

public sealed record CreatedUser(User User, Team Team);

public sealed record CreatedUserWithToken(User User, Team Team, string ApiToken);

public class AccountException(string message) : Exception(message);

/// <summary>A user added to an existing team on the Solo plan that already has its one member.</summary>
public sealed class SoloTeamFullException(string teamName)
    : AccountException($"Team '{teamName}' is on the Solo plan, which has one member.")
{
    public string TeamName { get; } = teamName;
}

/// <summary>The first-run setup lost to another one, or came after a user was made.</summary>
public sealed class FirstUserExistsException() : AccountException("The first user has already been created: sign in instead.");

/// <summary>An address of a user: the one they sign in with, one proven theirs (confirmation mail, Gmail link), or an alias they only added.</summary>
public enum AddressState { SignIn, Confirmed, Unconfirmed }

public sealed record AddressInfo(string Address, AddressState State, DateTimeOffset? ConfirmationSentAt);

/// <summary>Creating users and tokens; shared by the web app's first-run page, the API and `et`.</summary>
public sealed class AccountService(AppDbContext db, UserManager<User> users, TimeProvider clock)
{
    public Task<bool> AnyUserAsync(CancellationToken ct = default) => db.Users.AnyAsync(ct);

    /// <summary>
    /// Creates the user (and the team if it does not exist yet) without an API token: the web app's first-run page
    /// signs the user in with a cookie, and a token nobody was shown would be a live credential nobody holds. They make
    /// one on the API tokens page when they need it.
    /// </summary>
    public async Task<CreatedUser> CreateUserAsync(NewUser request, CancellationToken ct = default)
    {
        var (user, team, _) = await CreateAsync(request, tokenName: null, firstUser: false, ct);
        return new CreatedUser(user, team);
    }

    /// <summary>
    /// The web app's first-run page: creates the user as <see cref="CreateUserAsync"/> does, but only while there is no
    /// user at all. The page's own check is not enough: two first-run forms posted at once (a double click, or a stranger
    /// racing the administrator) both pass it, and each would make an admin. Throws <see cref="FirstUserExistsException"/>.
    /// </summary>
    public async Task<CreatedUser> CreateFirstUserAsync(NewUser request, CancellationToken ct = default)
    {
        var (user, team, _) = await CreateAsync(request, tokenName: null, firstUser: true, ct);
        return new CreatedUser(user, team);
    }

    /// <summary>The longest name of a personal API token (its column's length).</summary>
    public const int MaxTokenNameLength = 100;

    /// <summary>The longest sign-in email (Identity's column for the user name and email).</summary>
    public const int MaxEmailLength = 256;

    /// <summary>The longest team name and display name (their columns' length).</summary>
    public const int MaxNameLength = 200;

    /// <summary>The PostgreSQL advisory lock that lets one first-run setup at a time look for users and create one.</summary>
    public const long FirstUserLock = 7_262_003;

    /// <summary>
    /// Creates the user and, in the same transaction, a first API token named <paramref name="tokenName"/>, for a caller
    /// that shows it (`et users add` prints it): either both exist afterwards or neither.
    /// </summary>
    public async Task<CreatedUserWithToken> CreateUserWithTokenAsync(NewUser request, string tokenName, CancellationToken ct = default)
    {
        var (user, team, token) = await CreateAsync(request, tokenName, firstUser: false, ct);
        return new CreatedUserWithToken(user, team, token!);
    }

    /// <summary>
    /// A member added to an existing team (tracked by this context) by one of its admins (the Team page): in the caller's
    /// transaction when it has one, so that the caller's own checks commit with the insert.
    /// Without a password, they choose one from an invitation mail.
    /// </summary>
    public async Task<User> CreateMemberAsync(Team team, string email, string? displayName, TeamRole role, string? password, CancellationToken ct = default)
    {
        var (user, _, _) = await CreateAsync(new NewUser(email, team.Name, null, role, password, displayName, PasswordSetByOther: true), tokenName: null, firstUser: false, ct, team);
        return user;
    }

    async Task<(User User, Team Team, string? Token)> CreateAsync(NewUser request, string? tokenName, bool firstUser, CancellationToken ct, Team? existing = null)
    {
        try
        {
            return await CreateOnceAsync(request, tokenName, firstUser, ct, existing);
        }
        catch (TeamMadeMeanwhileException)
        {
            // The team was made by another request between our look and our insert ("Acme" and "ACME" added at once):
            // nothing of ours was kept, and this time the look finds it, so the user joins it as if it had come first
            // (or is refused as a second member of a solo team).
            return await CreateOnceAsync(request, tokenName, firstUser, ct, existing);
        }
    }

    sealed class TeamMadeMeanwhileException : Exception;

    /// <summary>
    /// The team a name given by a person means (`et users add`, `et teams plan`, `et outbox`): the one with exactly that
    /// name, else the one whose name differs only in case (<see cref="Team.Normalize"/>). Exactly first, so that a team
    /// kept beside a near-duplicate made before names were compared this way is still found by its own name.
    /// </summary>
    public static async Task<Team?> FindTeamAsync(AppDbContext db, string name, CancellationToken ct = default)
    {
        name = PlainText.OneLine(name).Trim();
        var normalized = Team.Normalize(name);
        var found = await db.Teams.Where(t => t.Name == name || t.NormalizedName == normalized).ToListAsync(ct);
        return found.FirstOrDefault(t => t.Name == name) ?? found.FirstOrDefault(t => t.NormalizedName == normalized);
    }

    async Task<(User User, Team Team, string? Token)> CreateOnceAsync(NewUser request, string? tokenName, bool firstUser, CancellationToken ct, Team? existing)
    {
        var email = NormalizeAddress(request.Email) ?? throw new AccountException($"'{request.Email}' is not an email address.");
        // Identity keeps the user name and email in 256 characters, fewer than an address may have: PostgreSQL refused a
        // longer one at the insert, which was then said as a duplicate.
        if (email.Length > MaxEmailLength) throw new AccountException($"{email} is longer than the {MaxEmailLength} characters a sign-in email may have.");
        // A number given for either (a command line's "--role 5") would be stored as a role or plan that does not exist.
        if (!Enum.IsDefined(request.Role)) throw new AccountException($"{(int)request.Role} is not a role: \"admin\" or \"member\".");
        if (request.Plan is { } asked && !Enum.IsDefined(asked)) throw new AccountException($"{(int)asked} is not a plan: \"solo\" or \"team\".");
        // Names are one line of text (PlainText.OneLine): a NUL failed the insert on PostgreSQL.
        var teamName = PlainText.OneLine(request.TeamName ?? "").Trim();
        if (teamName.Length == 0) throw new AccountException("A team name is required.");
        // The columns' lengths (AppDbContext): PostgreSQL refused a longer one at the insert (the first-run page's 500),
        // SQLite stored whatever came.
        if (teamName.Length > MaxNameLength) throw new AccountException($"The team name is longer than {MaxNameLength} characters.");
        var displayName = PlainText.OneLineOrNull(request.DisplayName)?.Trim();
        if (displayName is { Length: > MaxNameLength }) throw new AccountException($"The display name is longer than {MaxNameLength} characters.");
        // Taken only where someone signs in with it (its domain written either way); an alias others merely claimed gives way below.
        var forms = StoredForms(email);
        if (await SignsInAs(db, email).AnyAsync(ct) || await db.Users.AnyAsync(u => forms.Contains(u.Email!), ct))
        {
            throw new AccountException($"{email} already belongs to a user.");
        }

        var now = clock.GetUtcNow();
        // "encom" beside a team "Encom" is that team: the first user of a team of its own would have become its admin.
        var team = existing ?? await FindTeamAsync(db, teamName, ct);
        var newTeam = team is null;
        team ??= new Team { Name = teamName, NormalizedName = Team.Normalize(teamName), Plan = request.Plan ?? Plan.Solo, CreatedAt = now };
        if (newTeam) db.Teams.Add(team);
        else if (request.Plan is { } plan && team.Plan != plan) team.Plan = plan;

        var user = new User
        {
            Id = Guid.NewGuid(),
            UserName = email,
            Email = email,
            EmailConfirmed = true,
            TeamId = team.Id,
            // The first user of a team administers it.
            Role = newTeam ? TeamRole.Admin : request.Role,
            DisplayName = string.IsNullOrEmpty(displayName) ? null : displayName,
            CreatedAt = now,
            LockoutEnabled = true,
            MustChangePassword = request.Password is not null && request.PasswordSetByOther,
        };
        user.Addresses.Add(new UserAddress { Address = email });

        // The caller's transaction, when it has one (CreateMemberAsync), commits this with its own checks.
        await using var tx = db.Database.CurrentTransaction is null ? await db.Database.BeginTransactionAsync(ct) : null;
        if (firstUser)
        {
            // Looked for inside the transaction, one setup at a time: SQLite's write transaction (BEGIN IMMEDIATE) already
            // admits one writer at a time; PostgreSQL's read-committed one would let both look before either inserts.
            if (db.Database.IsNpgsql()) await db.Database.ExecuteSqlRawAsync($"SELECT pg_advisory_xact_lock({FirstUserLock})", ct);
            if (await db.Users.AnyAsync(ct)) throw new FirstUserExistsException();
        }
        if (!newTeam)
        {
            // The Solo plan's one member, checked with the team held (PostgreSQL: its row; SQLite: the one write
            // transaction), so that two users added at once cannot both pass. The plan is the one this request leaves
            // the team on: an operator's `et users add --plan team` moves it and adds the member in one step.
            if (db.Database.IsNpgsql()) await db.Database.ExecuteSqlInterpolatedAsync($"SELECT 1 FROM \"Teams\" WHERE \"Id\" = {team.Id} FOR UPDATE", ct);
            if (team.Plan == Plan.Solo && await db.Users.AnyAsync(u => u.TeamId == team.Id, ct)) throw new SoloTeamFullException(team.Name);
        }
        await GiveWayAsync(email, keep: null, ct);
        if (newTeam)
        {
            try
            {
                await db.SaveChangesAsync(ct);
            }
            catch (DbUpdateException) when (tx is not null)
            {
                // The unique normalised name: the same team (in any case) made by another request since we looked.
                await tx.RollbackAsync(ct);
                db.ChangeTracker.Clear();
                if (await FindTeamAsync(db, teamName, ct) is not null) throw new TeamMadeMeanwhileException();
                throw;
            }
        }
        try
        {
            // Identity saves the user itself, and a user made with the same address at this moment (in another team:
            // a team's own adds wait for one another on its row), past the check above as this one is, meets it on
            // the unique user name: the same answer as when it came first, and nothing of this one is kept.
            var result = request.Password is null ? await users.CreateAsync(user) : await users.CreateAsync(user, request.Password);
            // Or Identity's own look for the name, made after the first one committed: the same answer too.
            var describer = new IdentityErrorDescriber();
            if (result.Errors.Any(e => e.Code == describer.DuplicateUserName("").Code || e.Code == describer.DuplicateEmail("").Code))
            {
                throw new AccountException($"{email} already belongs to a user.");
            }
            if (!result.Succeeded)
            {
                throw new AccountException(string.Join(" ", result.Errors.Select(e => e.Description)));
            }
            // The email is the user's proven address: it gets the address's one verified-address login (its key is the
            // address), so that a user confirming the same address at this moment, past the check above as this one is,
            // meets this row and one of the two fails, instead of both going through.
            db.UserLogins.Add(new IdentityUserLogin<Guid> { LoginProvider = VerifiedAddressProvider, ProviderKey = email, ProviderDisplayName = email, UserId = user.Id });
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException)
        {
            // The transaction is rolled back (ours on disposal, the caller's as this propagates): nothing tracked is saved later.
            db.ChangeTracker.Clear();
            throw new AccountException($"{email} already belongs to a user.");
        }
        var token = tokenName is null ? null : (await CreateTokenAsync(user.Id, tokenName, ct)).Token;
        if (tx is not null) await tx.CommitAsync(ct);
        return (user, team, token);
    }

    /// <summary>
    /// Moves a team to another plan (`et teams plan`). Back on the Solo plan a team keeps its members (they lose what
    /// needs the team plan) and takes no new one.
    /// </summary>
    public async Task<Team> SetPlanAsync(string teamName, Plan plan, CancellationToken ct = default)
    {
        // A number given on the command line ("--plan 7") was stored as a plan that does not exist, and every check of
        // the form "Plan >= Team" then gave the team the team plan's features.
        if (!Enum.IsDefined(plan)) throw new AccountException($"{(int)plan} is not a plan: \"solo\" or \"team\".");
        var team = await FindTeamAsync(db, teamName, ct) ?? throw new AccountException($"no team '{teamName}'");
        team.Plan = plan;
        await db.SaveChangesAsync(ct);
        return team;
    }

    public async Task<(ApiToken Entity, string Token)> CreateTokenAsync(Guid userId, string name, CancellationToken ct = default)
    {
        var token = Tokens.NewApiToken();
        // One line, without control characters: PostgreSQL text cannot hold U+0000 (it failed the insert), and a line
        // break or a BEL in a token's name is nothing anyone means to list.
        name = PlainText.OneLine(name).Trim();
        // The column's length: the API and the page say so before; `et tokens create --name` did not, and PostgreSQL
        // refused the insert ("the database could not be used") while SQLite kept the name whole.
        if (name.Length > MaxTokenNameLength) throw new AccountException($"A token's name is at most {MaxTokenNameLength} characters.");
        var entity = new ApiToken
        {
            UserId = userId,
            Name = name.Length == 0 ? "token" : name,
            Prefix = token[..10],
            Hash = Tokens.HashApiToken(token),
            CreatedAt = clock.GetUtcNow(),
        };
        db.ApiTokens.Add(entity);
        await db.SaveChangesAsync(ct);
        return (entity, token);
    }

    /// <summary>
    /// Adds an alias, unconfirmed: the user's claim, which proves nothing. Whether the address is someone else's is not
    /// looked at, so that the answer tells nobody (another user's claim, email or confirmed address alike): the claim is
    /// this user's own, and it never signs anyone in. Only the user's own addresses are refused, as already theirs.
    /// </summary>
    public async Task AddAddressAsync(Guid userId, string address, CancellationToken ct = default)
    {
        var a = NormalizeAddress(address) ?? throw new AccountException($"'{address}' is not an email address.");
        // Theirs already with its domain written the other way (punycode or Unicode) is theirs already too.
        if (await StoredFormAsync(userId, a, ct) is { } mine)
            throw new AccountException(mine == a ? $"{a} is already one of your addresses." : $"{a} is already one of your addresses (as {mine}).");
        db.UserAddresses.Add(new UserAddress { UserId = userId, Address = a });
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException)
        {
            // The same address added twice at once (a double click, a retry): the second meets the first on the key.
            db.ChangeTracker.Clear();
            if (await db.UserAddresses.AnyAsync(x => x.Address == a && x.UserId == userId, ct)) throw new AccountException($"{a} is already one of your addresses.");
            throw;
        }
    }

    /// <summary>
    /// The login provider (Identity's user logins) under which an address proven to be the user's is kept: an address
    /// Google verified and the user confirmed on the Gmail link page, or one whose confirmation mail the user opened.
    /// An alias added through the API proves nothing. The login's key (provider, address) lets one user at most hold it.
    /// </summary>
    public const string VerifiedAddressProvider = "EmailTracking.VerifiedAddress";

    /// <summary>
    /// The user a Microsoft or Google identity with this (verified, normalized) address signs in as: the address must be
    /// the user's, and either their EmailTracking email (set by whoever created the user) or verified as theirs
    /// (<see cref="LinkVerifiedAddressAsync"/>). A plain alias is not enough: anyone can add any address as an alias, and
    /// the address's real owner would then be signed in as the one who added it.
    /// </summary>
    /// <remarks>The address in either form its domain may be stored in (<see cref="StoredForms"/>): one mailbox.</remarks>
    public static IQueryable<User> SignsInAs(AppDbContext db, string address)
    {
        var forms = StoredForms(address);
        return db.UserAddresses.Where(a => forms.Contains(a.Address))
            .Join(db.Users, a => a.UserId, u => u.Id, (a, u) => u)
            .Where(u => forms.Contains(u.Email!)
                        || db.UserLogins.Any(l => l.LoginProvider == VerifiedAddressProvider && forms.Contains(l.ProviderKey) && l.UserId == u.Id));
    }

    /// <summary>The user's address as they have it, with its domain in punycode or in Unicode; null when it is not theirs.</summary>
    async Task<string?> StoredFormAsync(Guid userId, string address, CancellationToken ct)
    {
        var forms = StoredForms(address);
        return await db.UserAddresses.Where(x => x.UserId == userId && forms.Contains(x.Address)).OrderBy(x => x.Address).Select(x => x.Address).FirstOrDefaultAsync(ct);
    }

    /// <summary>
    /// Adds the address (unless it is already the user's) and records it as verified; throws when another user signs in
    /// with it (their email, or verified by them). Other users' unconfirmed claims on it give way: they are removed, so
    /// their own-mail rules stop treating the owner's mail as theirs. Callers catch <see cref="DbUpdateException"/> too:
    /// two users verifying the same address at once meet on the login's key, and the second changes nothing.
    /// </summary>
    public async Task LinkVerifiedAddressAsync(Guid userId, string address, CancellationToken ct = default)
    {
        var a = NormalizeAddress(address) ?? throw new AccountException($"'{address}' is not an email address.");
        await using var tx = db.Database.CurrentTransaction is null ? await db.Database.BeginTransactionAsync(ct) : null;
        if (await SignsInAs(db, a).AnyAsync(u => u.Id != userId, ct)) throw new AccountException($"{a} belongs to another EmailTracking user.");
        // Already theirs with its domain written the other way: that address is the one verified, not a second one added.
        if (await StoredFormAsync(userId, a, ct) is { } mine) a = mine;
        else db.UserAddresses.Add(new UserAddress { UserId = userId, Address = a });
        if (!await db.UserLogins.AnyAsync(l => l.LoginProvider == VerifiedAddressProvider && l.ProviderKey == a && l.UserId == userId, ct))
        {
            db.UserLogins.Add(new IdentityUserLogin<Guid> { LoginProvider = VerifiedAddressProvider, ProviderKey = a, ProviderDisplayName = a, UserId = userId });
        }
        await GiveWayAsync(a, keep: userId, ct);
        await db.SaveChangesAsync(ct);
        if (tx is not null) await tx.CommitAsync(ct);
    }

    /// <summary>
    /// The address now signs in as <paramref name="keep"/> (or a user being made with it as their email): a verification
    /// a former owner left behind (the address no longer theirs) is removed, and so are the other users' claims on it,
    /// which proved nothing (the caller checked that nobody else signs in with it). A verification whose user still has
    /// the address is left alone even so: it is another user proving it at this very moment, past the same check, and
    /// the caller's own verified-address login then meets it on the login's key, so that only one of the two succeeds.
    /// </summary>
    async Task GiveWayAsync(string address, Guid? keep, CancellationToken ct)
    {
        // In either form its domain may be stored in: one mailbox.
        var forms = StoredForms(address);
        await db.UserLogins.Where(l => l.LoginProvider == VerifiedAddressProvider && forms.Contains(l.ProviderKey) && l.UserId != keep
                                       && !db.UserAddresses.Any(a => forms.Contains(a.Address) && a.UserId == l.UserId)).ExecuteDeleteAsync(ct);
        await db.UserAddresses.Where(x => forms.Contains(x.Address) && x.UserId != keep).ExecuteDeleteAsync(ct);
    }

    /// <summary>
    /// The user's addresses with their state: their sign-in email first, then the others by address, each with the last
    /// confirmation mail sent to it (kept a week).
    /// </summary>
    public async Task<List<AddressInfo>> AddressesAsync(Guid userId, CancellationToken ct = default) =>
        (await AddressesAsync([userId], ct)).GetValueOrDefault(userId) ?? [];

    /// <summary>
    /// The addresses of several users (a team's members), as <see cref="AddressesAsync(Guid, CancellationToken)"/> gives
    /// one user's, in the same four queries however many users there are. A user without any address is not in the answer.
    /// </summary>
    public async Task<Dictionary<Guid, List<AddressInfo>>> AddressesAsync(IReadOnlyCollection<Guid> userIds, CancellationToken ct = default)
    {
        var ids = userIds.Distinct().ToList();
        var emails = await db.Users.Where(u => ids.Contains(u.Id)).Select(u => new { u.Id, u.Email }).ToDictionaryAsync(u => u.Id, u => u.Email, ct);
        var addresses = await db.UserAddresses.Where(a => ids.Contains(a.UserId)).Select(a => new { a.UserId, a.Address }).ToListAsync(ct);
        var verified = (await db.UserLogins.Where(l => ids.Contains(l.UserId) && l.LoginProvider == VerifiedAddressProvider)
            .Select(l => new { l.UserId, l.ProviderKey }).ToListAsync(ct)).Select(l => (l.UserId, l.ProviderKey)).ToHashSet();
        // The latest mail to each address, taken in memory: SQLite stores times as numbers (AppDbContext) and has no MAX over them in EF.
        var sent = (await db.AddressConfirmations.Where(c => ids.Contains(c.UserId)).Select(c => new { c.UserId, c.Address, c.SentAt }).ToListAsync(ct))
            .GroupBy(c => (c.UserId, c.Address)).ToDictionary(g => g.Key, g => g.Max(c => c.SentAt));
        return addresses.GroupBy(a => a.UserId).ToDictionary(g => g.Key, g =>
        {
            var email = emails.GetValueOrDefault(g.Key);
            return g.Select(a => new AddressInfo(a.Address,
                    a.Address == email ? AddressState.SignIn : verified.Contains((g.Key, a.Address)) ? AddressState.Confirmed : AddressState.Unconfirmed,
                    sent.TryGetValue((g.Key, a.Address), out var at) ? at : null))
                .OrderBy(a => a.State == AddressState.SignIn ? 0 : 1).ThenBy(a => a.Address, StringComparer.Ordinal).ToList();
        });
    }

    /// <summary>
    /// The user whose email (their sign-in name) this is, its domain written either way (<see cref="AddressKey"/>), for
    /// `et`, which names users by address. Throws when the text is not an address or no user has it.
    /// </summary>
    public async Task<User> UserByEmailAsync(string? email, CancellationToken ct = default)
    {
        var a = NormalizeAddress(email) ?? throw new AccountException($"'{email?.Trim()}' is not an email address.");
        var forms = StoredForms(a);
        return await db.Users.AsNoTracking().OrderBy(u => u.Email).FirstOrDefaultAsync(u => forms.Contains(u.Email!), ct)
            ?? throw new AccountException($"no user {a}");
    }

    /// <summary>Whether this address of the user signs them in (their email, or verified).</summary>
    public Task<bool> IsVerifiedAsync(Guid userId, string address, CancellationToken ct = default) =>
        SignsInAs(db, address).AnyAsync(u => u.Id == userId, ct);

    /// <summary>Lower-cased bare address, or null when the text is not one address.</summary>
    public static string? NormalizeAddress(string? text) => TryParseAddress(text, out var address, out _) ? address : null;

    /// <summary>
    /// The form in which two addresses are compared: the same mailbox gives the same key however its domain was written.
    /// The local part stays as written, lower-cased as every stored address is; an internationalized domain is read in
    /// Unicode, lower case, whether it came as punycode (zoe@xn--r8jz45g.jp) or as written (zoe@例え.jp). Unicode because
    /// that is how MimeKit reads every address of a message that arrives. Only for comparing and for keys: addresses are
    /// shown and sent as the user wrote them.
    /// </summary>
    /// <remarks>
    /// MimeKit decodes only a lower-case "xn--" label, hence lower case first; and again after, as a label may encode
    /// capitals. No Unicode normalization: with invariant globalization (Directory.Build.props) .NET leaves text as it is.
    /// </remarks>
    public static string AddressKey(string address) =>
        MimeKit.MailboxAddress.DecodeAddrspec(address.ToLowerInvariant()).ToLowerInvariant();

    /// <summary>
    /// The forms a stored address of this mailbox may have, for lookups the database makes (where <see cref="AddressKey"/>
    /// cannot run): stored addresses are lower-cased as written, so with the domain in Unicode or in punycode.
    /// </summary>
    public static string[] StoredForms(string address)
    {
        var key = AddressKey(address);
        var ascii = MimeKit.MailboxAddress.EncodeAddrspec(key);
        return ascii == key ? [key] : [key, ascii];
    }

    /// <summary>Whether two addresses are the same mailbox (<see cref="AddressKey"/>).</summary>
    public static bool SameAddress(string? a, string? b) => a is not null && b is not null && AddressKey(a) == AddressKey(b);

    /// <summary>Whether the text holds a Unicode format character (bidi controls, zero-width space, word joiner, BOM)
    /// other than the zero-width joiner and non-joiner.</summary>
    public static bool HasInvisibleOrBidi(string text)
    {
        foreach (var c in text)
        {
            if (c > '\u00ff' && c is not '\u200c' and not '\u200d' && char.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.Format) return true;
        }
        return false;
    }

    /// <summary>Whether the text is a list of several addresses ("a@x.test, b@x.test"), which one recipient field cannot be.</summary>
    public static bool IsSeveralAddresses(string? text) =>
        text is not null && MimeKit.InternetAddressList.TryParse(text, out var list) && IsSeveral(list);

    static bool IsSeveral(MimeKit.InternetAddressList list) => list.Mailboxes.Count(x => x.Address.Contains('@')) > 1;

    /// <summary>One address, as "Name &lt;a@b&gt;" or bare: the lower-cased address and the display name, if any.</summary>
    /// <remarks>
    /// <see cref="System.Net.Mail.MailAddress"/> decides what is an address, but it reads "a@x.test, b@x.test" as the
    /// address b@x.test named "a@x.test,", so a list pasted into one field would silently lose all but its last
    /// address: text that MimeKit reads as more than one address is refused instead. MailAddress also keeps a quoted
    /// name's backslash escapes and an RFC 2047 encoded name as written, so the name is MimeKit's, which reads both as
    /// mail clients do; an unquoted name with a comma ("Smith, John &lt;j@x.test&gt;") is not one mailbox to MimeKit and
    /// keeps MailAddress's reading.
    /// </remarks>
    public static bool TryParseAddress(string? text, out string address, out string? name)
    {
        address = "";
        name = null;
        if (string.IsNullOrWhiteSpace(text) || text.Length > 400) return false;
        try
        {
            var m = new System.Net.Mail.MailAddress(text.Trim());
            if (m.Address.Length > 320 || !(m.Host.Contains('.') || m.Host == "localhost")) return false;
            // A quoted local part may hold a control character ("a\u0007b"@x.test) for .NET, never for SMTP (RFC 5321, qtextSMTP).
            if (PlainText.HasControl(m.Address)) return false;
            // Nor a bidi control or an invisible character: "\u202emoc.knab-terces@target.test" is shown as
            // "tset.tegrat@secret-bank.com" wherever it is written out, an address posing as another. The zero-width
            // joiners some scripts need in a domain (IDNA's contextual rules) stay allowed.
            if (HasInvisibleOrBidi(m.Address)) return false;
            // One MimeKit reading serves both: whether the text is a list, and the name of the one mailbox it holds.
            var displayName = m.DisplayName;
            if (MimeKit.InternetAddressList.TryParse(text, out var list))
            {
                if (IsSeveral(list)) return false;
                if (list is [MimeKit.MailboxAddress only] && string.Equals(only.Address, m.Address, StringComparison.OrdinalIgnoreCase)) displayName = only.Name;
            }
            address = m.Address.ToLowerInvariant();
            // An encoded word (=?utf-8?b?…?=) can decode to anything: a NUL, which PostgreSQL cannot store, or a line
            // break and "Bcc: …" in what is shown and sent as one name.
            displayName = PlainText.OneLineOrNull(displayName);
            name = string.IsNullOrWhiteSpace(displayName) ? null : displayName.Trim();
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
