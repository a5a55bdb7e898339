using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Postgres.Migrations
{
    /// <summary>
    /// A recipient's own document link remembers the share link it was made from, whose expiry and off switch then
    /// hold for it too. A nullable column is added only, so no table is rebuilt; links made before it follow no share link.
    /// </summary>
    public partial class RecipientLinksFollowShareLinks : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<Guid>(
                name: "SharedFromId",
                table: "ContentLinks",
                type: "uuid",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "SharedFromId",
                table: "ContentLinks");
        }
    }
}
