using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Postgres.Migrations
{
    /// <summary>
    /// Events may name no message: a document read through a share link that was never part of a registered message
    /// (TrackedMessageId null). The new index holds a document's events only (a document page's followed links
    /// read it); pixel hits and clicks (no document) do not write to it. Down drops the share-link reads: a column that
    /// may not be null has nothing to hold them with.
    /// </summary>
    public partial class ShareLinkEvents : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AlterColumn<Guid>(
                name: "TrackedMessageId",
                table: "Events",
                type: "uuid",
                nullable: true,
                oldClrType: typeof(Guid),
                oldType: "uuid");

            migrationBuilder.CreateIndex(
                name: "IX_Events_DocumentReads",
                table: "Events",
                columns: new[] { "ContentId", "Id" },
                filter: "\"ContentId\" IS NOT NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_Events_DocumentReads",
                table: "Events");

            migrationBuilder.Sql("DELETE FROM \"Events\" WHERE \"TrackedMessageId\" IS NULL;");

            migrationBuilder.AlterColumn<Guid>(
                name: "TrackedMessageId",
                table: "Events",
                type: "uuid",
                nullable: false,
                oldClrType: typeof(Guid),
                oldType: "uuid",
                oldNullable: true);
        }
    }
}
