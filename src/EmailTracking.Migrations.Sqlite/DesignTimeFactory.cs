using EmailTracking.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace EmailTracking.Migrations.Sqlite;

/// <summary>Used by `dotnet ef migrations add` only; the server configures the context itself.</summary>
public sealed class DesignTimeFactory : IDesignTimeDbContextFactory<AppDbContext>
{
    public AppDbContext CreateDbContext(string[] args)
    {
        var b = new DbContextOptionsBuilder<AppDbContext>();
        DatabaseSetup.Configure(b, DatabaseProvider.Sqlite, "Data Source=:memory:");
        return new AppDbContext(b.Options);
    }
}
