using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Tests.Data;

/// <summary>
/// Revoking an invitation removes the member only when nothing is theirs (TeamMembers.Owned): every table that names a
/// user, other than those whose rows go with the user's (a cascade), must be in that list, or a new table's rows would
/// be left naming a user who no longer exists.
/// </summary>
public sealed class OwnedByUserTests
{
    [Fact]
    public void Every_table_that_names_a_user_without_a_cascade_is_checked_before_a_member_is_removed()
    {
        var options = new DbContextOptionsBuilder<AppDbContext>();
        DatabaseSetup.Configure(options, DatabaseProvider.Sqlite, "Data Source=:memory:");
        using var db = new AppDbContext(options.Options);
        var user = db.Model.FindEntityType(typeof(User))!;

        // Rows that go with the user's own row when it is deleted, and say nothing of the account being used: its
        // addresses (an invited member's own email has one), their confirmations, and Identity's rows (logins are
        // checked apart: any but the verified-address one is an add-in sign-in).
        Type[] goWithUser =
        [
            typeof(UserAddress), typeof(AddressConfirmation),
            typeof(IdentityUserClaim<Guid>), typeof(IdentityUserLogin<Guid>), typeof(IdentityUserRole<Guid>), typeof(IdentityUserToken<Guid>),
        ];
        foreach (var type in goWithUser)
        {
            var entity = db.Model.FindEntityType(type);
            if (entity is null) continue;
            Assert.Contains(entity.GetForeignKeys(), fk => fk.PrincipalEntityType == user && fk.DeleteBehavior == DeleteBehavior.Cascade);
        }

        var naming = db.Model.GetEntityTypes()
            // The server's mail queue names the member its invitation goes to: that row is the invitation itself, not a
            // sign of the account being used, and the queue drops a mail whose member is gone or deactivated.
            .Where(e => e.ClrType != typeof(User) && e.ClrType != typeof(ServerMail) && !goWithUser.Contains(e.ClrType))
            .Where(e => e.GetProperties().Any(p => (p.ClrType == typeof(Guid) || p.ClrType == typeof(Guid?)) && p.Name.EndsWith("UserId", StringComparison.Ordinal)))
            .Select(e => e.ClrType)
            .ToHashSet();

        Assert.Contains(typeof(TrackedMessage), naming);
        Assert.Equal(naming.OrderBy(t => t.Name), TeamMembers.Owned.Select(o => o.Entity).Distinct().OrderBy(t => t.Name));
    }
}
