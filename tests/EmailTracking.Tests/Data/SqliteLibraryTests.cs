using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using EmailTracking.Data;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace EmailTracking.Tests.Data;

/// <summary>
/// SQLite runs in multi-thread mode without memory statistics (<see cref="DatabaseSetup.SqliteLibrary"/>), in the
/// tests as in the server: the settings only take before SQLite's first connection, so the test assembly makes them
/// first thing, as the server does before it opens its database.
/// </summary>
public class SqliteLibraryTests
{
    [ModuleInitializer]
    internal static void ConfigureBeforeAnyConnection() => DatabaseSetup.SqliteLibrary.Configure();

    [DllImport("e_sqlite3", EntryPoint = "sqlite3_db_mutex")]
    static extern IntPtr DbMutex(IntPtr db);

    [Fact]
    public void Connections_have_no_mutex_of_their_own_and_allocations_are_not_counted()
    {
        Assert.True(DatabaseSetup.SqliteLibrary.Configure(), "SQLite was in use before the settings could be made");
        using var connection = new SqliteConnection("Data Source=:memory:");
        connection.Open();
        using (var cmd = connection.CreateCommand())
        {
            cmd.CommandText = "CREATE TABLE t (v TEXT); INSERT INTO t VALUES (randomblob(100000)); SELECT count(*) FROM t;";
            Assert.Equal(1L, cmd.ExecuteScalar());
        }
        // Serialized mode (the bundled library's default) gives every connection a mutex; multi-thread mode none.
        Assert.Equal(IntPtr.Zero, DbMutex(connection.Handle!.DangerousGetHandle()));
        // Without memory statistics SQLite reports nothing in use, whatever it holds.
        Assert.Equal(0, raw.sqlite3_memory_used());
    }

    [Fact]
    public void Settings_made_after_the_first_connection_are_refused_and_leave_SQLite_as_it_was()
    {
        using var connection = new SqliteConnection("Data Source=:memory:");
        connection.Open();
        Assert.Equal(raw.SQLITE_MISUSE, raw.sqlite3_config(raw.SQLITE_CONFIG_SERIALIZED));
        Assert.Equal(IntPtr.Zero, DbMutex(connection.Handle!.DangerousGetHandle()));
    }
}
