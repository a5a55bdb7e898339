using System.CommandLine;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Data;
using EmailTracking.Server.Replies.Classification;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EmailTracking.Cli;

static class Commands
{
    public static Command Migrate()
    {
        var cmd = new Command("migrate", "Create the database if needed and apply every migration.");
        cmd.SetAction(async (_, ct) =>
        {
            await using var sp = BuildServices();
            await DataExtensions.MigrateAsync(sp, ct);
            Console.WriteLine("Database is up to date.");
            return 0;
        });
        return cmd;
    }

    public static Command Users()
    {
        var email = new Option<string>("--email") { Description = "The user's email address (also their sign-in name).", Required = true };
        var team = new Option<string>("--team") { Description = "Team name, in any case (encom is the team Encom); created when no team has it (its first user is its admin).", Required = true };
        var plan = new Option<Plan?>("--plan") { Description = "The team's plan: solo or team. A new team starts on solo unless told; an existing team keeps its plan unless told " +
            "(a solo team has one member: --plan team moves it to the team plan and adds the user in one step)." };
        var role = new Option<TeamRole>("--role") { Description = "admin or member (the first user of a new team is always admin).", DefaultValueFactory = _ => TeamRole.Member };
        var password = new Option<string?>("--password") { Description = "Web sign-in password, which the user must change at their first sign-in; without it the user signs in with API tokens only until one is set (et users set-password)." };
        var name = new Option<string?>("--name") { Description = "Display name." };
        var ownPassword = new Option<bool>("--own-password") { Description = "The --password is the user's own (an operator making their own account): " +
            "they are not asked to choose another at their first sign-in." };
        var add = new Command("add", "Create a user and print a personal API token. Refused for a team on the solo plan that already has its one member, " +
            "unless --plan team (or `et teams plan`) moves it to the team plan.") { email, team, plan, role, password, name, ownPassword };
        add.SetAction(async (parse, ct) =>
        {
            await using var sp = BuildServices();
            await DataExtensions.MigrateAsync(sp, ct);
            await using var scope = sp.CreateAsyncScope();
            var accounts = scope.ServiceProvider.GetRequiredService<AccountService>();
            try
            {
                var created = await accounts.CreateUserWithTokenAsync(new NewUser(parse.GetValue(email)!, parse.GetValue(team)!,
                    parse.GetValue(plan), parse.GetValue(role), parse.GetValue(password), parse.GetValue(name), PasswordSetByOther: !parse.GetValue(ownPassword)), "default", ct);
                Console.Error.WriteLine($"Created {created.User.Email} ({created.User.Role.ToString().ToLowerInvariant()}) in team '{created.Team.Name}' on the {created.Team.Plan.ToString().ToLowerInvariant()} plan.");
                Console.Error.WriteLine("API token (shown once):");
                Console.WriteLine(created.ApiToken);
                return 0;
            }
            catch (SoloTeamFullException ex)
            {
                // No override: a solo team with two members is what the web app assumes cannot be, and moving the team to
                // the team plan is the operator's one step (the plan is what allows members).
                Console.Error.WriteLine($"error: {ex.Message} Move it to the team plan to add {AccountService.NormalizeAddress(parse.GetValue(email))}: " +
                    $"give --plan team, or run `et teams plan --team \"{ex.TeamName}\" --plan team` first.");
                return 2;
            }
            catch (AccountException ex)
            {
                Console.Error.WriteLine($"error: {ex.Message}");
                return 2;
            }
        });

        var list = new Command("list",
            "List users, one a line, tab-separated: email, role (admin, member), team, plan (solo, team), access (active; locked: password " +
            "sign-in shut for up to 15 minutes after wrong passwords; deactivated: no sign-in of any kind, no API token) and web password (password, " +
            "no-password: the add-ins and API tokens only; not-signed-in-yet: no password and never in by any way, no API token nor invitation " +
            "on record, as the Team page says: an admin sends them an invitation), and invitation (invited: mailed an invitation to choose a password, still pending; " +
            "invitation-expired: its link expired unused; revoked: revoked by an admin, the user deactivated; accepted; -: none was sent).");
        list.SetAction(async (_, ct) =>
        {
            await using var sp = await ExistingDatabaseAsync(ct);
            if (sp is null) return 2;
            await using var scope = sp.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            var now = DateTimeOffset.UtcNow;
            var lifetime = scope.ServiceProvider.GetRequiredService<Microsoft.Extensions.Options.IOptions<TeamOptions>>().Value.InvitationLifetime;
            var rows = await db.Users.OrderBy(u => u.Email)
                .Select(u => new
                {
                    u.Id, u.TeamId, u.Email, u.Role, Team = u.Team!.Name, u.Team.Plan, u.LockoutEnd, HasPassword = u.PasswordHash != null,
                    u.InvitedAt, u.InvitationAcceptedAt, u.InvitationRevokedAt,
                })
                .ToListAsync(ct);
            // Those the Team page shows as not signed in yet (legacy invitees: no password, no invitation on record, never
            // in) have no way in at all, so "no-password" (the add-ins and API tokens only) would say what is not so.
            // The Team page's own rule decides, asked for the teams that have a member without a password.
            var members = scope.ServiceProvider.GetRequiredService<TeamMembers>();
            var notSignedInYet = new HashSet<Guid>();
            foreach (var teamId in rows.Where(u => !u.HasPassword).Select(u => u.TeamId).Distinct())
            {
                notSignedInYet.UnionWith((await members.ListAsync(teamId, ct)).Where(m => m.Access == MemberAccess.NotSignedInYet).Select(m => m.Id));
            }
            foreach (var u in rows)
            {
                // New columns go at the end: whatever reads the first four keeps working.
                var access = EmailTracking.Server.Accounts.Auth.IsShut(u.LockoutEnd, now) ? "deactivated" : u.LockoutEnd > now ? "locked" : "active";
                Console.WriteLine($"{u.Email}\t{u.Role.ToString().ToLowerInvariant()}\t{u.Team}\t{u.Plan.ToString().ToLowerInvariant()}\t{access}\t" +
                    (u.HasPassword ? "password" : notSignedInYet.Contains(u.Id) ? "not-signed-in-yet" : "no-password") + "\t" +
                    TeamMembers.StateOf(u.InvitedAt, u.InvitationAcceptedAt, u.InvitationRevokedAt, u.HasPassword, now, lifetime) switch
                    {
                        InvitationState.Pending => "invited",
                        InvitationState.Expired => "invitation-expired",
                        InvitationState.Revoked => "revoked",
                        InvitationState.Accepted => "accepted",
                        _ => "-",
                    });
            }
            return 0;
        });
        var deactivateEmail = new Option<string>("--email") { Description = "The user's email address.", Required = true };
        var deactivate = new Command("deactivate",
            "Deactivate a user, as a team admin does on the Team page: no web sign-in, API token, live feed or add-in works for them " +
            "(open web sessions end at their next request), and a running server stops watching their mailboxes at its next look " +
            "(Mailboxes:Rescan). Nothing of theirs is deleted. Refused for the team's last admin who can sign in.") { deactivateEmail };
        deactivate.SetAction((parse, ct) => AsOperatorAsync(parse.GetValue(deactivateEmail)!, ct, async (members, address) =>
        {
            var (user, changed) = await members.DeactivateAsOperatorAsync(address, ct);
            return changed ? $"Deactivated {user.Email}: their web sessions, API tokens and add-ins are signed out; `et users reactivate` lets them in again."
                : $"{user.Email} was already deactivated.";
        }));
        var reactivateEmail = new Option<string>("--email") { Description = "The user's email address.", Required = true };
        var reactivate = new Command("reactivate",
            "Let a deactivated user in again: their password, API tokens and mailboxes work as before.") { reactivateEmail };
        reactivate.SetAction((parse, ct) => AsOperatorAsync(parse.GetValue(reactivateEmail)!, ct, async (members, address) =>
        {
            var (user, changed) = await members.ReactivateAsOperatorAsync(address, ct);
            return changed ? $"Reactivated {user.Email}: they can sign in again." : $"{user.Email} was not deactivated.";
        }));
        var roleEmail = new Option<string>("--email") { Description = "The user's email address.", Required = true };
        var roleValue = new Option<TeamRole>("--role") { Description = "admin or member.", Required = true };
        var setRole = new Command("role",
            "Make a user an admin or a member of their team, as a team admin does on the Team page (their open web sessions sign in again " +
            "with the new role). Refused when it would leave the team without an admin who can sign in.") { roleEmail, roleValue };
        setRole.SetAction((parse, ct) => AsOperatorAsync(parse.GetValue(roleEmail)!, ct, async (members, address) =>
        {
            var role = parse.GetValue(roleValue);
            var (user, changed) = await members.SetRoleAsOperatorAsync(address, role, ct);
            var what = role == TeamRole.Admin ? "an admin" : "a member";
            return changed ? $"{user.Email} is now {what}." : $"{user.Email} was {what} already.";
        }));
        var unlinkEmail = new Option<string>("--email") { Description = "The user's email address.", Required = true };
        var unlink = new Command("unlink-microsoft",
            "Forget the Microsoft account bound to a user at its first add-in sign-in, so that the next one to sign in with the user's address is bound instead " +
            "(an account deleted and made again, or moved to another tenant), and the accounts the user linked from the add-in.") { unlinkEmail };
        unlink.SetAction(async (parse, ct) =>
        {
            await using var sp = await ExistingDatabaseAsync(ct);
            if (sp is null) return 2;
            await using var scope = sp.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            var address = parse.GetValue(unlinkEmail)!;
            if (await UserAsync(scope.ServiceProvider, address, ct) is not { } user) return 2;
            var removed = await EmailTracking.Server.Outlook.MicrosoftAccounts.UnlinkAllAsync(db, user.Id, ct);
            Console.Error.WriteLine(removed switch
            {
                0 => $"{user.Email} had no Microsoft account bound or linked.",
                1 => $"Unlinked the Microsoft account of {user.Email}.",
                _ => $"Unlinked the {removed} Microsoft accounts of {user.Email}.",
            });
            return 0;
        });
        var confirmEmail = new Option<string>("--email") { Description = "The user's email address.", Required = true };
        var confirmAddress = new Option<string>("--address") { Description = "The address to confirm as theirs.", Required = true };
        var confirm = new Command("confirm-address",
            "Confirm an address as a user's, as an administrator who knows it is theirs (a server without a mail relay sends no confirmation " +
            "mails): it then signs them in to the add-ins, and other users' unconfirmed claims on it give way. Refused when another user " +
            "signs in with it.") { confirmEmail, confirmAddress };
        confirm.SetAction(async (parse, ct) =>
        {
            await using var sp = await ExistingDatabaseAsync(ct);
            if (sp is null) return 2;
            await using var scope = sp.CreateAsyncScope();
            var email = parse.GetValue(confirmEmail)!;
            if (await UserAsync(scope.ServiceProvider, email, ct) is not { } user) return 2;
            try
            {
                await scope.ServiceProvider.GetRequiredService<AccountService>().LinkVerifiedAddressAsync(user.Id, parse.GetValue(confirmAddress)!, ct);
            }
            catch (Exception ex) when (ex is AccountException or DbUpdateException)
            {
                Console.Error.WriteLine($"error: {(ex is AccountException ? ex.Message : "another user confirmed the address at the same moment.")}");
                return 2;
            }
            Console.Error.WriteLine($"Confirmed {AccountService.NormalizeAddress(parse.GetValue(confirmAddress))} as an address of {user.Email}.");
            return 0;
        });
        var resetEmail = new Option<string>("--email") { Description = "The user's email address.", Required = true };
        var reset = new Command("set-password",
            "Set a user's web sign-in password, read from the first line of standard input (so that it stays out of the shell's history): " +
            "a forgotten one, or the first for a user made without one; the user must choose a new one at their next web sign-in. The user's web sessions end; their API tokens stay valid, and the " +
            "15-minute lock after wrong passwords is lifted (a deactivation is not: et users reactivate).") { resetEmail };
        reset.SetAction(async (parse, ct) =>
        {
            await using var sp = await ExistingDatabaseAsync(ct);
            if (sp is null) return 2;
            await using var scope = sp.CreateAsyncScope();
            var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
            var email = parse.GetValue(resetEmail)!;
            if (await UserAsync(scope.ServiceProvider, email, ct) is not { } user) return 2;
            var newPassword = Console.In.ReadLine();
            if (string.IsNullOrEmpty(newPassword))
            {
                Console.Error.WriteLine("error: give the new password on standard input, e.g. `et users set-password --email a@b.example < file`.");
                return 2;
            }
            // Chosen by the operator, not the user: the web app asks them for their own at their next sign-in. One update:
            // the rules are checked first, so a password they refuse leaves the account as it was.
            user.MustChangePassword = true;
            var result = await users.ResetPasswordAsync(user, await users.GeneratePasswordResetTokenAsync(user), newPassword);
            if (!result.Succeeded)
            {
                Console.Error.WriteLine($"error: {string.Join(" ", result.Errors.Select(e => e.Description))}");
                return 2;
            }
            await users.ResetAccessFailedCountAsync(user);
            if (!EmailTracking.Server.Accounts.Auth.IsShut(user.LockoutEnd, DateTimeOffset.UtcNow)) await users.SetLockoutEndDateAsync(user, null);
            Console.Error.WriteLine($"Set the web sign-in password of {user.Email}; their other web sessions are signed out.");
            return 0;
        });
        return new Command("users", "Manage users.") { add, list, unlink, confirm, reset, deactivate, reactivate, setRole };
    }

    /// <summary>
    /// The user named by an --email option, their domain written in punycode or in Unicode alike (Identity's own lookup
    /// compares the text as written), or null after saying on stderr that there is none.
    /// </summary>
    static async Task<User?> UserAsync(IServiceProvider services, string email, CancellationToken ct)
    {
        try
        {
            var found = await services.GetRequiredService<AccountService>().UserByEmailAsync(email, ct);
            // Tracked by Identity's store, for the changes the caller makes through UserManager.
            var user = await services.GetRequiredService<UserManager<User>>().FindByIdAsync(found.Id.ToString());
            if (user is null) Console.Error.WriteLine($"error: no user {found.Email}");
            return user;
        }
        catch (AccountException ex)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            return null;
        }
    }

    /// <summary>A change to a user's access made as the server's operator (<see cref="TeamMembers"/>), said on stderr.</summary>
    static async Task<int> AsOperatorAsync(string address, CancellationToken ct, Func<TeamMembers, string, Task<string>> change)
    {
        await using var sp = await ExistingDatabaseAsync(ct);
        if (sp is null) return 2;
        await using var scope = sp.CreateAsyncScope();
        try
        {
            Console.Error.WriteLine(await change(scope.ServiceProvider.GetRequiredService<TeamMembers>(), address));
            return 0;
        }
        catch (LastAdminException ex)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            Console.Error.WriteLine("Another member becomes an admin on the Team page; or add one with `et users add --team … --role admin` " +
                "and give them a password with `et users set-password`.");
            return 2;
        }
        catch (AccountException ex)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            return 2;
        }
    }

    public static Command Teams()
    {
        var team = new Option<string>("--team") { Description = "The team's name.", Required = true };
        var plan = new Option<Plan>("--plan") { Description = "solo or team (document tracking needs team).", Required = true };
        var set = new Command("plan", "Move a team to another plan.") { team, plan };
        set.SetAction(async (parse, ct) =>
        {
            await using var sp = await ExistingDatabaseAsync(ct);
            if (sp is null) return 2;
            await using var scope = sp.CreateAsyncScope();
            try
            {
                var changed = await scope.ServiceProvider.GetRequiredService<AccountService>().SetPlanAsync(parse.GetValue(team)!, parse.GetValue(plan), ct);
                Console.Error.WriteLine($"Team '{changed.Name}' is now on the {changed.Plan.ToString().ToLowerInvariant()} plan.");
                return 0;
            }
            catch (AccountException ex)
            {
                Console.Error.WriteLine($"error: {ex.Message}");
                return 2;
            }
        });
        return new Command("teams", "Manage teams.") { set };
    }

    /// <summary>The team by name, or null after saying on stderr that there is none.</summary>
    static async Task<Team?> TeamAsync(AppDbContext db, string name, CancellationToken ct)
    {
        var found = await AccountService.FindTeamAsync(db, name, ct);
        if (found is null) Console.Error.WriteLine($"error: no team '{name}'");
        return found;
    }

    /// <summary>`et outbox list|replay`: the delivery log's dead letters, and delivering them again.</summary>
    public static Command OutboxCommand()
    {
        var team = new Option<string>("--team") { Description = "The team's name.", Required = true };
        var state = new Option<DeliveryState?>("--state") { Description = "pending, delivered, dead or skipped (default: all)." };
        var list = new Command("list", "List the team's latest deliveries (one per line: id, state, attempts, target, event type, last error).") { team, state };
        list.SetAction(async (parse, ct) =>
        {
            await using var sp = await ExistingDatabaseAsync(ct);
            if (sp is null) return 2;
            await using var scope = sp.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            if (await TeamAsync(db, parse.GetValue(team)!, ct) is not { } found) return 2;
            var q = db.OutboxDeliveries.Where(d => d.TeamId == found.Id);
            if (parse.GetValue(state) is { } st) q = q.Where(d => d.State == st);
            // The last error is outsiders' text (a receiver's reason phrase, Salesforce's message): printed as one line with
            // no control character, so that no ESC drives the terminal and no tab adds a column, also for errors stored
            // before the server cleaned them.
            foreach (var d in await q.OrderByDescending(d => d.Id).Take(200).ToListAsync(ct))
                Console.WriteLine($"{d.Id}\t{d.State.ToString().ToLowerInvariant()}\t{d.Attempts}\t{d.TargetKind}:{d.TargetId}\t{d.EventType}\t{EmailTracking.Server.Web.PlainText.OneLineOrNull(d.LastError)}");
            return 0;
        });

        var replayTeam = new Option<string>("--team") { Description = "The team's name.", Required = true };
        var delivery = new Option<long?>("--delivery") { Description = "One delivery's id (default: every dead letter of the team)." };
        var replay = new Command("replay", "Deliver dead letters again, with their idempotency keys, attempts counted afresh.") { replayTeam, delivery };
        replay.SetAction(async (parse, ct) =>
        {
            await using var sp = await ExistingDatabaseAsync(ct);
            if (sp is null) return 2;
            await using var scope = sp.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            if (await TeamAsync(db, parse.GetValue(replayTeam)!, ct) is not { } found) return 2;
            var q = db.OutboxDeliveries.Where(d => d.TeamId == found.Id);
            if (parse.GetValue(delivery) is { } id)
            {
                // One delivery asked for by its id: one that is not there (a typo, another team's) or not dead is the
                // operator's mistake, said so, not "0 dead letters go again" with success.
                q = q.Where(d => d.Id == id);
                var asked = await q.Select(d => (DeliveryState?)d.State).FirstOrDefaultAsync(ct);
                if (asked is null)
                {
                    Console.Error.WriteLine($"error: team '{found.Name}' has no delivery {id} (`et outbox list --team \"{found.Name}\"` lists them).");
                    return 2;
                }
                if (asked != DeliveryState.Dead)
                {
                    Console.Error.WriteLine($"error: delivery {id} is {asked.Value.ToString().ToLowerInvariant()}, not dead: only dead letters are replayed.");
                    return 2;
                }
            }
            var n = await EmailTracking.Server.Outbox.OutboxApi.Replay(db, q, TimeProvider.System, ct);
            Console.Error.WriteLine($"{n} dead {(n == 1 ? "letter goes" : "letters go")} again; a running server delivers {(n == 1 ? "it" : "them")} within its poll interval.");
            return 0;
        });
        return new Command("outbox", "The outbox's deliveries to webhooks and Salesforce.") { list, replay };
    }

    /// <summary>`et mail list`: the server's own mail that waits or failed (never its links: they are made as each mail goes).</summary>
    public static Command MailCommand()
    {
        var all = new Option<bool>("--all") { Description = "Also mails sent or dropped (kept for Mail:KeepFor)." };
        var list = new Command("list",
            "List the server's own mails (resets, lock notices, invitations, confirmations) that wait or failed, one per line: " +
            "id, state, to, kind, tries, next try (UTC), last error.") { all };
        list.SetAction(async (parse, ct) =>
        {
            await using var sp = await ExistingDatabaseAsync(ct);
            if (sp is null) return 2;
            await using var scope = sp.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            var q = db.ServerMails.AsQueryable();
            if (!parse.GetValue(all)) q = q.Where(m => m.State == ServerMailState.Pending || m.State == ServerMailState.Failed);
            foreach (var m in await q.OrderBy(m => m.Id).Take(1000).ToListAsync(ct))
            {
                var next = m.State == ServerMailState.Pending ? m.NextAttemptAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture) : "-";
                // The relay's answer is outsiders' text: one line with no control character, so that no tab adds a
                // column and no ESC drives the terminal (as `et outbox list` prints its errors).
                var error = EmailTracking.Server.Web.PlainText.OneLineOrNull(m.LastError);
                Console.WriteLine($"{m.Id}\t{m.State.ToString().ToLowerInvariant()}\t{m.Recipient}\t{m.Kind}\t{m.Attempts}\t{next}\t{error}");
            }
            // The server's own settings, as it reads them (the CLI's services do not bind them).
            var options = sp.GetRequiredService<IConfiguration>().GetSection(SystemMailOptions.Section).Get<SystemMailOptions>() ?? new SystemMailOptions();
            if (!options.Configured && await db.ServerMails.AnyAsync(m => m.State == ServerMailState.Pending, ct))
                Console.Error.WriteLine("warning: no relay is configured (Mail:Smtp:Host and Mail:From): waiting mails go only once one is.");
            return 0;
        });
        return new Command("mail", "The server's own mail queue.") { list };
    }

    public static Command TokensCommand()
    {
        var email = new Option<string>("--email") { Description = "Whose token.", Required = true };
        var name = new Option<string>("--name") { Description = "What the token is for.", DefaultValueFactory = _ => "cli" };
        var create = new Command("create", "Create a personal API token for a user and print it.") { email, name };
        create.SetAction(async (parse, ct) =>
        {
            await using var sp = await ExistingDatabaseAsync(ct);
            if (sp is null) return 2;
            await using var scope = sp.CreateAsyncScope();
            if (await UserAsync(scope.ServiceProvider, parse.GetValue(email)!, ct) is not { } user) return 2;
            try
            {
                var (_, token) = await scope.ServiceProvider.GetRequiredService<AccountService>().CreateTokenAsync(user.Id, parse.GetValue(name)!, ct);
                Console.WriteLine(token);
                return 0;
            }
            catch (AccountException ex)
            {
                Console.Error.WriteLine($"error: {ex.Message}");
                return 2;
            }
        });
        return new Command("tokens", "Manage personal API tokens.") { create };
    }

    public static Command Classify()
    {
        var files = new Argument<string[]>("files")
        {
            Description = "The .eml files to classify.",
            Arity = ArgumentArity.OneOrMore,
        };
        var cmd = new Command("classify",
            "Classify .eml files as human, auto_reply, bounce, complaint or receipt (a read receipt or delivery notice) and print one JSON object per line per file " +
            "(unreadable MIME: kind \"unparseable\" with the reason). Needs no database. Exit code 2 when a file is missing; " +
            "the other files are still classified.") { files };
        cmd.SetAction(parse =>
        {
            var classifier = new InboundClassifier();
            var exitCode = 0;
            foreach (var file in parse.GetValue(files) ?? [])
            {
                InboundClassification result;
                // What cannot be opened as a file is said so plainly, and the other files are still classified.
                var problem = string.IsNullOrWhiteSpace(file) ? "no file name given (an empty argument)"
                    : Directory.Exists(file) ? "a directory, not a file"
                    : null;
                if (problem is not null)
                {
                    Console.Error.WriteLine($"error: cannot read \"{file}\": {problem}");
                    result = new InboundClassification(InboundKind.Unparseable, problem);
                    exitCode = 2;
                }
                else
                {
                    try
                    {
                        using var stream = File.OpenRead(file);
                        result = classifier.ClassifyStream(stream);
                    }
                    catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException or IOException
                                                  or ArgumentException or NotSupportedException)
                    {
                        Console.Error.WriteLine($"error: cannot read {file}: {e.Message}");
                        result = new InboundClassification(InboundKind.Unparseable, e is FileNotFoundException or DirectoryNotFoundException
                            ? "file not found" : $"cannot read the file: {e.Message}");
                        exitCode = 2;
                    }
                }
                Console.Out.WriteLine(ClassificationJson.Line(file, result));
            }
            return exitCode;
        });
        return cmd;
    }

    public static Command GmailDeploymentCommand()
    {
        var baseUrl = new Option<string>("--base-url") { Description = "The server's public https:// base URL, as Google will call it.", Required = true };
        var output = new Option<string?>("--out") { Description = "Write the deployment here (default: standard output)." };
        var template = new Option<string?>("--template") { Description = "Another template (default: addin-manifests/gmail/deployment.template.json, built in)." };
        var cmd = new Command("gmail-deployment",
            "Write the Gmail add-on's HTTP deployment (deployment.json) for a public base URL, for " +
            "`gcloud workspace-add-ons deployments create|replace NAME --deployment-file=FILE`.") { baseUrl, output, template };
        cmd.SetAction(async (parse, ct) =>
        {
            string text;
            try
            {
                var templateText = parse.GetValue(template) is { } file ? await File.ReadAllTextAsync(file, ct) : BuiltIn("gmail-deployment.template.json");
                text = Server.Gmail.GmailDeployment.Render(templateText, parse.GetValue(baseUrl)!);
            }
            catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 2;
            }
            return await WriteOutAsync(text, parse.GetValue(output), ct);
        });
        return cmd;
    }

    public static Command OutlookManifestCommand()
    {
        var baseUrl = new Option<string>("--base-url") { Description = "The server's public https:// base URL, where Outlook loads the add-in's pages.", Required = true };
        var clientId = new Option<string>("--client-id") { Description = "The Entra ID app registration's application (client) id (the server's AzureAd:ClientId).", Required = true };
        var output = new Option<string?>("--out") { Description = "Write the manifest here (default: standard output)." };
        var template = new Option<string?>("--template") { Description = "Another template (default: addin-manifests/outlook/manifest.xml, built in; its localhost twin works too)." };
        var cmd = new Command("outlook-manifest",
            "Write the Outlook add-in's XML manifest for a public base URL and Entra app registration, to deploy in the " +
            "Microsoft 365 admin center (Integrated apps) or sideload (Outlook: Get Add-ins, My add-ins, Add a custom add-in).")
            { baseUrl, clientId, output, template };
        cmd.SetAction(async (parse, ct) =>
        {
            string text;
            try
            {
                var templateText = parse.GetValue(template) is { } file ? await File.ReadAllTextAsync(file, ct) : BuiltIn("outlook-manifest.xml");
                text = Server.Outlook.OutlookManifest.Render(templateText, parse.GetValue(baseUrl)!, parse.GetValue(clientId)!);
            }
            catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 2;
            }
            return await WriteOutAsync(text, parse.GetValue(output), ct);
        });
        return cmd;
    }

    /// <summary>
    /// A generated file to the path given, or to standard output. The file is written whole or not at all: into a file
    /// beside it, then moved over it, so that a full disk or an interrupted run never leaves half a manifest where a
    /// good one was. A path that cannot be written is said in one line, with exit code 2.
    /// </summary>
    static async Task<int> WriteOutAsync(string text, string? path, CancellationToken ct)
    {
        if (path is null)
        {
            Console.Out.Write(text);
            return 0;
        }
        if (string.IsNullOrWhiteSpace(path) || Directory.Exists(path))
        {
            Console.Error.WriteLine($"error: cannot write \"{path}\": {(Directory.Exists(path) ? "a directory, not a file" : "no file name given")}.");
            return 2;
        }
        string? temporary = null;
        try
        {
            var full = Path.GetFullPath(path);
            if (!Directory.Exists(Path.GetDirectoryName(full)))
            {
                Console.Error.WriteLine($"error: cannot write \"{path}\": there is no folder {Path.GetDirectoryName(full)}.");
                return 2;
            }
            temporary = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
            await File.WriteAllTextAsync(temporary, text, ct);
            File.Move(temporary, full, overwrite: true);
            temporary = null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            Console.Error.WriteLine($"error: cannot write \"{path}\": {e.Message}");
            return 2;
        }
        finally
        {
            if (temporary is not null)
            {
                try { File.Delete(temporary); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            }
        }
        Console.Error.WriteLine($"Wrote {path}.");
        return 0;
    }

    static string BuiltIn(string name)
    {
        using var stream = typeof(Commands).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"{name} is not built into et.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>The server's configuration as et reads it: appsettings.json in the current directory, then the environment.</summary>
    static IConfiguration Configuration() => new ConfigurationBuilder()
        .SetBasePath(Directory.GetCurrentDirectory())
        .AddJsonFile("appsettings.json", optional: true)
        .AddEnvironmentVariables()
        .Build();

    /// <summary>The server's data and account services, configured like the server.</summary>
    static ServiceProvider BuildServices()
    {
        var config = Configuration();
        var services = new ServiceCollection();
        services.AddSingleton(config);
        // EF's own log of a failed connection, command or query is a stack trace or the SQL: et says what failed itself.
        // Whatever else is logged goes to standard error: standard output is the command's answer (a token, a list).
        services.AddLogging(b => b.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace).SetMinimumLevel(LogLevel.Warning)
            .AddFilter("Microsoft.EntityFrameworkCore.Database.Connection", LogLevel.None)
            .AddFilter("Microsoft.EntityFrameworkCore.Database.Command", LogLevel.None)
            .AddFilter("Microsoft.EntityFrameworkCore.Query", LogLevel.None));
        services.AddSingleton(TimeProvider.System);
        services.AddAppDatabase(config);
        services.AddDataProtection();
        services.AddAccounts();
        return services.BuildServiceProvider();
    }

    /// <summary>
    /// The services of a command that works on the server's database as it is (all but `migrate` and `users add`), or
    /// null after saying on stderr why not. Run in another folder than the server's, et used to make an empty SQLite
    /// file there (and its data/ folder) and fail on "no such table" after printing EF's SQL on standard output; a
    /// schema older than et's fails the same way, or worse, half-way through a change. Neither is made nor migrated
    /// here: that is for `et migrate`.
    /// </summary>
    static async Task<ServiceProvider?> ExistingDatabaseAsync(CancellationToken ct)
    {
        var config = Configuration();
        var provider = DatabaseSetup.ParseProvider(config.GetSection(DatabaseOptions.Section).Get<DatabaseOptions>()?.Provider);
        var where = Where();
        if (provider == DatabaseProvider.Sqlite && DatabaseSetup.SqliteFile(config.GetConnectionString("Default")) is { } file && !File.Exists(file))
        {
            Console.Error.WriteLine($"error: there is no database at {file}. Run et in the folder the server runs in, or set ConnectionStrings__Default " +
                "(and Database__Provider) as for the server; `et migrate` makes a new one.");
            return null;
        }
        var sp = BuildServices();
        await using var scope = sp.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var pending = (await db.Database.GetPendingMigrationsAsync(ct)).Count();
        if (pending == 0) return sp;
        var applied = (await db.Database.GetAppliedMigrationsAsync(ct)).Count();
        Console.Error.WriteLine(applied == 0
            ? $"error: the database {where} has no EmailTracking tables: it is not the server's, or was never migrated (`et migrate` makes them)."
            : $"error: the database {where} is older than this et ({pending} {(pending == 1 ? "migration" : "migrations")} to apply): run `et migrate`, or start the server, first.");
        await sp.DisposeAsync();
        return null;

        string Where() => provider == DatabaseProvider.Sqlite ? $"at {DatabaseSetup.SqliteFile(config.GetConnectionString("Default")) ?? "(in memory)"}" : "named by ConnectionStrings__Default";
    }
}
