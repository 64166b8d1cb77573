"""nubo: mail, files, calendars and a cooperative's books, from one server.

Free software under the GNU Affero General Public License, version 3 or later.
"""

__version__ = "0.1.0"
